{{/*
Triton's address for the inference services, shared with the pipeline templates.

  {{ include "heron.tritonUrl" $ }}

With triton.enabled it is "<release>-heron-triton:<triton.ports.grpc>": host:port of the gRPC
port of the chart's Triton Service (the form HERON_BACKEND__URL takes: no scheme; the Service is
in the release's namespace, so the short name resolves). Without triton.enabled it is "", and the
caller keeps the URL the plan carries (an external Triton). Names of the Triton objects:
heron.tritonName.
*/}}
{{- define "heron.tritonUrl" -}}
{{- if .Values.triton.enabled -}}
{{- printf "%s:%d" (include "heron.tritonName" .) (int .Values.triton.ports.grpc) -}}
{{- end -}}
{{- end -}}

{{/* The Triton Deployment's, Service's and PodDisruptionBudget's name. */}}
{{- define "heron.tritonName" -}}
{{- include "heron.name" (dict "root" . "component" "triton") -}}
{{- end -}}
