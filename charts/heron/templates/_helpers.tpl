{{/*
Names, labels, images and security contexts shared by every template.
Each part of the chart (pipelines, Redis, Triton, monitoring) has its own template files;
what they share lives here, once.
*/}}

{{/* The release's base name, at most 63 characters (a DNS label). */}}
{{- define "heron.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: heron.name (dict "root" $ "component" "redis"). */}}
{{- define "heron.name" -}}
{{- printf "%s-%s" (include "heron.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object: heron.labels (dict "root" $ "component" "redis"). */}}
{{- define "heron.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: heron
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "heron.selectorLabels" . }}
{{- end -}}

{{/* The labels a Service or a controller selects its pods by. */}}
{{- define "heron.selectorLabels" -}}
app.kubernetes.io/name: heron
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image of the project: heron.image (dict "root" $ "name" "ingest") → registry/heron-ingest:tag. */}}
{{- define "heron.image" -}}
{{- $image := .root.Values.image -}}
{{- printf "%s/heron-%s:%s" $image.registry .name ($image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* Pod-level security: the "restricted" Pod Security Standard (the images run as this UID). */}}
{{- define "heron.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security of every container. */}}
{{- define "heron.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
HERON_REDIS_URL for a container, with the password from a Secret (never in a ConfigMap):
the chart's Redis, or redis.external.
*/}}
{{- define "heron.redisEnv" -}}
{{- $redis := .Values.redis -}}
{{- if $redis.external.url }}
- name: HERON_REDIS_URL
  value: {{ $redis.external.url | quote }}
{{- else if $redis.external.existingSecret }}
- name: HERON_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $redis.external.existingSecret }}
      key: {{ $redis.external.existingSecretKey }}
{{- else }}
- name: HERON_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret | default (include "heron.name" (dict "root" . "component" "redis")) }}
      key: {{ $redis.auth.existingSecretKey }}
- name: HERON_REDIS_URL
  value: {{ printf "redis://:$(HERON_REDIS_PASSWORD)@%s:%d/0" (include "heron.name" (dict "root" . "component" "redis")) (int $redis.port) | quote }}
{{- end }}
{{- end -}}
