{{/*
The chart's own Redis: rendered unless redis.external names one. Its client Service is
heron.name "redis" — the host heron.redisEnv (in _helpers.tpl) puts in HERON_REDIS_URL — and its
password Secret is redis.auth.existingSecret or heron.name "redis" (the key is
redis.auth.existingSecretKey in both), which heron.redisEnv reads too.
*/}}
{{- define "heron.redisEnabled" -}}
{{- if not (or .Values.redis.external.url .Values.redis.external.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "heron.redisName" -}}
{{- include "heron.name" (dict "root" . "component" "redis") -}}
{{- end -}}

{{- define "heron.redisSecretName" -}}
{{- .Values.redis.auth.existingSecret | default (include "heron.redisName" .) -}}
{{- end -}}
