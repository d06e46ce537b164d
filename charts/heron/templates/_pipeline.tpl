{{/*
Pipeline helpers (templates pipeline-*.yaml and control-*.yaml). A pipeline entry is what
`heron config plan CONFIG --format helm` wrote (docs/deploy.md): name, config, files, shm,
rtspPorts, plan. The templates render the plan; they never decide what runs or with which
settings — the planner did, once, for every runner.

Where a pod finds things (heron.core.plan.deploy says the same):
  /etc/heron/pipeline   the config and the files it names (ConfigMap <pipeline>-config)
  /etc/heron/settings   one settings file per service (ConfigMap <pipeline>-settings)
  /dev/shm              frames shared by the pipeline's containers (memory emptyDir)
  /tmp                  scratch (the root filesystem is read-only)
*/}}

{{/* heron.pipeline.options (dict "root" $ "p" $pipeline): pipelineDefaults with the entry's own
keys laid over them (maps merge key by key, lists and scalars replace), as YAML. */}}
{{- define "heron.pipeline.options" -}}
{{- $over := omit .p "name" "config" "files" "plan" "rtspPorts" -}}
{{- include "heron.pipeline.overlay" (dict "base" .root.Values.pipelineDefaults "over" $over) -}}
{{- end -}}

{{/* heron.pipeline.overlay (dict "base" map "over" map): `over` laid over `base`, recursively
for maps; a false or empty value in `over` wins too (sprig's merge would drop it). */}}
{{- define "heron.pipeline.overlay" -}}
{{- $out := deepCopy (.base | default dict) -}}
{{- range $key, $value := .over -}}
{{- $below := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $below) -}}
{{- $_ := set $out $key (include "heron.pipeline.overlay" (dict "base" $below "over" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Object names: heron.pipeline.name (dict "root" $ "p" $pipeline "suffix" "control"). */}}
{{- define "heron.pipeline.name" -}}
{{- $component := .p.name -}}
{{- if .suffix }}{{ $component = printf "%s-%s" .p.name .suffix }}{{ end -}}
{{- include "heron.name" (dict "root" .root "component" $component) -}}
{{- end -}}

{{/* The selector component of a pipeline's pod ("pipeline-<name>") or control ("control-<name>"). */}}
{{- define "heron.pipeline.component" -}}
{{- printf "%s-%s" .role .p.name -}}
{{- end -}}

{{/* The port of a HOST:PORT listen address. */}}
{{- define "heron.pipeline.listenPort" -}}
{{- splitList ":" . | last | int -}}
{{- end -}}

{{/* The planned service of that name, as YAML ("" when the plan has none):
heron.pipeline.service (dict "p" $pipeline "service" "inference"). */}}
{{- define "heron.pipeline.service" -}}
{{- $name := .service -}}
{{- range .p.plan.services -}}
{{- if eq .service $name }}{{ toYaml . }}{{ end -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap key of a shipped file: its path with "/" as "_" (mounted back at the path). */}}
{{- define "heron.pipeline.fileKey" -}}
{{- replace "/" "_" . -}}
{{- end -}}

{{/* Checksum of what a pipeline's pods run: a new config, file or plan rolls them. */}}
{{- define "heron.pipeline.checksum" -}}
{{- toJson (pick .p "config" "files" "plan") | sha256sum -}}
{{- end -}}

{{/*
Probes of a service's HTTP endpoint (docs/runtime.md, "Probes"), on its named metrics port.
The startup probe gives the service its startup_timeout_s (model loading) before liveness counts.
*/}}
{{- define "heron.pipeline.probes" -}}
{{- $port := include "heron.metricsPortName" .service -}}
{{- $startup := .settings.startup_timeout_s | default 300 -}}
startupProbe:
  httpGet: {path: /healthz, port: {{ $port }}}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: {{ div (add (int $startup) 9) 10 | max 1 }}
livenessProbe:
  httpGet: {path: /healthz, port: {{ $port }}}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: {{ $port }}}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 3
{{- end -}}

{{/*
Node affinity of a pipeline pod with a GPU: any of gpu.products (nvidia.com/gpu.product, from
the GPU Operator's feature discovery) and a compute capability of at least
gpu.minComputeCapability (nvidia.com/gpu.compute.major/minor): major > M, or major = M and
minor >= m — two node selector terms, either of which may match.
*/}}
{{- define "heron.pipeline.gpuAffinity" -}}
{{- $gpu := . -}}
{{- $product := list -}}
{{- if $gpu.products -}}
{{- $product = list (dict "key" "nvidia.com/gpu.product" "operator" "In" "values" $gpu.products) -}}
{{- end -}}
{{- $terms := list -}}
{{- if $gpu.minComputeCapability -}}
{{- $cc := splitList "." $gpu.minComputeCapability -}}
{{- $major := index $cc 0 | int -}}
{{- $minor := index $cc 1 | int -}}
{{- $above := dict "key" "nvidia.com/gpu.compute.major" "operator" "Gt" "values" (list (toString (sub $major 1))) -}}
{{- if gt $minor 0 -}}
{{- $above = dict "key" "nvidia.com/gpu.compute.major" "operator" "Gt" "values" (list (toString $major)) -}}
{{- $same := list (dict "key" "nvidia.com/gpu.compute.major" "operator" "In" "values" (list (toString $major))) (dict "key" "nvidia.com/gpu.compute.minor" "operator" "Gt" "values" (list (toString (sub $minor 1)))) -}}
{{- $terms = append $terms (dict "matchExpressions" (concat $product $same)) -}}
{{- end -}}
{{- $terms = prepend $terms (dict "matchExpressions" (concat $product (list $above))) -}}
{{- else if $product -}}
{{- $terms = list (dict "matchExpressions" $product) -}}
{{- end -}}
{{- if $terms -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      {{- toYaml $terms | nindent 6 }}
{{- end -}}
{{- end -}}

{{/*
The environment of every Heron container: unbuffered logs, a writable HOME (the root
filesystem is read-only) and the Redis URL from heron.redisEnv (never in a ConfigMap).
*/}}
{{- define "heron.pipeline.env" -}}
- name: PYTHONUNBUFFERED
  value: "1"
- name: HOME
  value: /tmp
{{- include "heron.redisEnv" . }}
{{- end -}}

{{/*
The media volume (pipelineDefaults.media): files AddSource may start at run time. Mounted
read-only in ingest, which reads them, and in control, which resolves a requested path on it.
*/}}
{{- define "heron.pipeline.mediaMount" -}}
- name: media
  mountPath: {{ .mountPath | default "/media" }}
  readOnly: true
  {{- with .subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end -}}

{{- define "heron.pipeline.mediaVolume" -}}
- name: media
  persistentVolumeClaim:
    claimName: {{ .existingClaim }}
    readOnly: true
{{- end -}}
