{{/*
Security of the chart's gRPC servers (values `grpc`; docs/deploy.md, "Security"): control's
Pipeline and Detections API and, when the plan serves it, inference's Detector API.

- TLS (grpc.tls.enabled, on by default): the server certificate is a kubernetes.io/tls Secret,
  heron.grpc.tlsSecretName, with tls.crt, tls.key and ca.crt (the CA clients trust). It is
  grpc.tls.existingSecret, or a cert-manager Certificate's (grpc.tls.certManager.issuerRef), or
  made by the chart (grpc-secrets.yaml: its own CA, kept across upgrades with `lookup`).
- Mutual TLS (grpc.tls.mutual): the servers also require a client certificate signed by ca.crt;
  the operator's and the helm test's is heron.grpc.clientSecretName.
- The bearer token (grpc.auth.enabled, on by default): heron.grpc.tokenSecretName, key
  heron.grpc.tokenKey; every call but gRPC health must carry it.

A server reads them from its environment (HERON_GRPC__TLS__*, HERON_GRPC__TOKEN from the Secret)
and the files mounted at heron.grpc.serverDir, so the planned settings in the ConfigMaps stay as
the planner wrote them.
*/}}

{{- define "heron.grpc.tlsOn" -}}
{{- if .Values.grpc.tls.enabled -}}true{{- end -}}
{{- end -}}

{{- define "heron.grpc.mutual" -}}
{{- if and .Values.grpc.tls.enabled .Values.grpc.tls.mutual -}}true{{- end -}}
{{- end -}}

{{- define "heron.grpc.authOn" -}}
{{- if .Values.grpc.auth.enabled -}}true{{- end -}}
{{- end -}}

{{/* cert-manager issues the certificates: TLS on, no Secret of the user's, an issuer named. */}}
{{- define "heron.grpc.certManager" -}}
{{- $tls := .Values.grpc.tls -}}
{{- if and $tls.enabled (not $tls.existingSecret) $tls.certManager.issuerRef.name -}}true{{- end -}}
{{- end -}}

{{/* The chart makes the CA and certificates itself (grpc-secrets.yaml). */}}
{{- define "heron.grpc.generated" -}}
{{- $tls := .Values.grpc.tls -}}
{{- if and $tls.enabled (not $tls.existingSecret) (not $tls.certManager.issuerRef.name) -}}true{{- end -}}
{{- end -}}

{{- define "heron.grpc.tlsSecretName" -}}
{{- .Values.grpc.tls.existingSecret | default (include "heron.name" (dict "root" . "component" "grpc-tls")) -}}
{{- end -}}

{{- define "heron.grpc.clientSecretName" -}}
{{- .Values.grpc.tls.existingClientSecret | default (include "heron.name" (dict "root" . "component" "grpc-client")) -}}
{{- end -}}

{{- define "heron.grpc.caSecretName" -}}
{{- include "heron.name" (dict "root" . "component" "grpc-ca") -}}
{{- end -}}

{{- define "heron.grpc.tokenSecretName" -}}
{{- .Values.grpc.auth.existingSecret | default (include "heron.name" (dict "root" . "component" "grpc-token")) -}}
{{- end -}}

{{- define "heron.grpc.tokenKey" -}}
{{- .Values.grpc.auth.existingSecretKey | default "token" -}}
{{- end -}}

{{/* Where a server finds its certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "heron.grpc.serverDir" -}}/etc/heron/grpc-tls{{- end -}}
{{/* Where a client finds the CA (ca.crt) and, with mutual TLS, its certificate. */}}
{{- define "heron.grpc.caDir" -}}/etc/heron/grpc-ca{{- end -}}
{{- define "heron.grpc.clientDir" -}}/etc/heron/grpc-client{{- end -}}

{{/*
The names the server certificate carries, as a JSON list: every gRPC Service of the release
(<pipeline>-control, and <pipeline>-detector where inference serves gRPC) as a short name, with
its namespace, .svc and .svc.<clusterDomain>; localhost (kubectl port-forward); and
grpc.tls.extraDnsNames. The operator checks <service>.<namespace>.svc.
*/}}
{{- define "heron.grpc.dnsNames" -}}
{{- $root := . -}}
{{- $ns := .Release.Namespace -}}
{{- $domain := .Values.grpc.tls.clusterDomain -}}
{{- $services := list -}}
{{- range $p := .Values.pipelines -}}
{{- if include "heron.pipeline.service" (dict "p" $p "service" "control") -}}
{{- $services = append $services (include "heron.pipeline.name" (dict "root" $root "p" $p "suffix" "control")) -}}
{{- end -}}
{{- $inference := include "heron.pipeline.service" (dict "p" $p "service" "inference") | fromYaml -}}
{{- if and $inference $inference.settings.grpc -}}
{{- $services = append $services (include "heron.pipeline.name" (dict "root" $root "p" $p "suffix" "detector")) -}}
{{- end -}}
{{- end -}}
{{- $names := list -}}
{{- range $services -}}
{{- $names = concat $names (list . (printf "%s.%s" . $ns) (printf "%s.%s.svc" . $ns) (printf "%s.%s.svc.%s" . $ns $domain)) -}}
{{- end -}}
{{- concat $names (list "localhost") .Values.grpc.tls.extraDnsNames | uniq | toJson -}}
{{- end -}}

{{/* The environment of a container that serves gRPC (control; inference with a Detector API). */}}
{{- define "heron.grpc.serverEnv" -}}
{{- if include "heron.grpc.tlsOn" . }}
- name: HERON_GRPC__TLS__CERT_FILE
  value: {{ printf "%s/tls.crt" (include "heron.grpc.serverDir" .) | quote }}
- name: HERON_GRPC__TLS__KEY_FILE
  value: {{ printf "%s/tls.key" (include "heron.grpc.serverDir" .) | quote }}
{{- if include "heron.grpc.mutual" . }}
- name: HERON_GRPC__TLS__CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" (include "heron.grpc.serverDir" .) | quote }}
{{- end }}
{{- end }}
{{- if include "heron.grpc.authOn" . }}
- name: HERON_GRPC__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "heron.grpc.tokenSecretName" . }}
      key: {{ include "heron.grpc.tokenKey" . }}
{{- end }}
{{- end -}}

{{- define "heron.grpc.serverMount" -}}
{{- if include "heron.grpc.tlsOn" . }}
- {name: grpc-tls, mountPath: {{ include "heron.grpc.serverDir" . }}, readOnly: true}
{{- end }}
{{- end -}}

{{/* The server's certificate volume: its key readable by the pod's group (fsGroup) only. */}}
{{- define "heron.grpc.serverVolume" -}}
{{- if include "heron.grpc.tlsOn" . }}
- name: grpc-tls
  secret:
    secretName: {{ include "heron.grpc.tlsSecretName" . }}
    defaultMode: 288  # 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      {{- if include "heron.grpc.mutual" . }}
      - {key: ca.crt, path: ca.crt}
      {{- end }}
{{- end }}
{{- end -}}

{{/* A client's mounts and volumes: the CA (never the server's key) and its own certificate. */}}
{{- define "heron.grpc.clientMounts" -}}
{{- if include "heron.grpc.tlsOn" . }}
- {name: grpc-ca, mountPath: {{ include "heron.grpc.caDir" . }}, readOnly: true}
{{- if include "heron.grpc.mutual" . }}
- {name: grpc-client, mountPath: {{ include "heron.grpc.clientDir" . }}, readOnly: true}
{{- end }}
{{- end }}
{{- end -}}

{{- define "heron.grpc.clientVolumes" -}}
{{- if include "heron.grpc.tlsOn" . }}
- name: grpc-ca
  secret:
    secretName: {{ include "heron.grpc.tlsSecretName" . }}
    defaultMode: 292  # 0444: a CA certificate is public
    items:
      - {key: ca.crt, path: ca.crt}
{{- if include "heron.grpc.mutual" . }}
- name: grpc-client
  secret:
    secretName: {{ include "heron.grpc.clientSecretName" . }}
    defaultMode: 288  # 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- end }}
{{- end -}}

{{/* Refusals of combinations that cannot work, naming the values. */}}
{{- define "heron.grpc.check" -}}
{{- $tls := .Values.grpc.tls -}}
{{- if and $tls.enabled $tls.existingSecret $tls.certManager.issuerRef.name -}}
{{- fail "grpc.tls: give existingSecret or certManager.issuerRef, not both" -}}
{{- end -}}
{{- if and (include "heron.grpc.mutual" .) $tls.existingSecret (not $tls.existingClientSecret) -}}
{{- fail "grpc.tls.mutual with grpc.tls.existingSecret needs grpc.tls.existingClientSecret: the client certificate (tls.crt, tls.key) the operator and helm test present, signed by the CA of the existingSecret's ca.crt" -}}
{{- end -}}
{{- if and (include "heron.grpc.certManager" .) (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
{{- fail "grpc.tls.certManager.issuerRef is set but the cluster serves no cert-manager.io/v1: install cert-manager (or, rendering offline, pass --api-versions cert-manager.io/v1), or leave issuerRef.name empty and the chart makes the certificates" -}}
{{- end -}}
{{- end -}}
