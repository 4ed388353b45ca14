{{/* Labels every object carries (the kustomize base sets part-of the same way). */}}
{{- define "doks-floating-ip.labels" -}}
app.kubernetes.io/part-of: doks-floating-ip
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Secret holding WEB_SECRET: the chart's own, or the one the user named. */}}
{{- define "doks-floating-ip.webSecretName" -}}
{{- default "event-forwarder" .Values.webSecret.existingSecret -}}
{{- end -}}

{{/* A subject list entry for a ServiceAccount of this release. */}}
{{- define "doks-floating-ip.subject" -}}
- kind: ServiceAccount
  name: {{ .name }}
  namespace: {{ .namespace }}
{{- end -}}
