{{/*
Monitoring helpers.

heron.monitoringOn (dict "root" $ "kind" "PodMonitor"): "true" when monitoring.enabled and the
cluster serves the Prometheus Operator's kind — `.Capabilities.APIVersions` has
monitoring.coreos.com/v1 or monitoring.coreos.com/v1/<kind> (a live cluster lists both; offline,
`helm template --api-versions monitoring.coreos.com/v1` switches them on). Without it nothing of
the Prometheus Operator is rendered, so the chart installs on clusters that lack its CRDs.
*/}}
{{- define "heron.monitoringOn" -}}
{{- $apis := .root.Capabilities.APIVersions -}}
{{- if and .root.Values.monitoring.enabled (or ($apis.Has "monitoring.coreos.com/v1") ($apis.Has (printf "monitoring.coreos.com/v1/%s" .kind))) -}}
true
{{- end -}}
{{- end -}}

{{/*
The services of a pipeline that serve /metrics, in a fixed order: each pipeline container names
its metrics port heron.metricsPortName of its service, which the PodMonitor scrapes.
*/}}
{{- define "heron.metricsServices" -}}
ingest streammux inference tracker overlay control
{{- end -}}

{{/* The PodMonitor of the pipelines (its Prometheus job is "<namespace>/<this name>"). */}}
{{- define "heron.podMonitorName" -}}
{{- include "heron.name" (dict "root" . "component" "pipelines") -}}
{{- end -}}

{{/* Labels of every monitoring object: the chart's plus monitoring.labels. */}}
{{- define "heron.monitoringLabels" -}}
{{ include "heron.labels" (dict "root" . "component" "monitoring") }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The name of a service's metrics port in the pipeline pods: heron.metricsPortName "streammux".
A port name is at most 15 characters (IANA service name), so "metrics-<service>" is kept
for the short names and the two longer ones are abbreviated: metrics-mux, metrics-infer.
*/}}
{{- define "heron.metricsPortName" -}}
{{- $short := dict "streammux" "mux" "inference" "infer" -}}
{{- printf "metrics-%s" (get $short . | default .) -}}
{{- end -}}
