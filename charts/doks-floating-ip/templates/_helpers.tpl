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

{{/* The folders of files/code (a link to the repository's in-cluster/) that hold modules,
relative to it: one ConfigMap each, since a ConfigMap is flat. A dict used as a set. */}}
{{- define "doks-floating-ip.codeFolders" -}}
{{- $folders := dict -}}
{{- range $path, $_ := .Files.Glob "files/code/**.py" -}}
{{- $_ := set $folders (dir $path | trimPrefix "files/code/") true -}}
{{- end -}}
{{- toJson (keys $folders | sortAlpha) -}}
{{- end -}}

{{/* A code folder's ConfigMap name: / and _ become -, then -code (as in-cluster/kustomization.yaml). */}}
{{- define "doks-floating-ip.codeConfigMap" -}}
{{- . | replace "/" "-" | replace "_" "-" }}-code
{{- end -}}

{{/* A code folder's volume name: its ConfigMap name without the shared prefix and suffix. */}}
{{- define "doks-floating-ip.codeVolume" -}}
{{- . | trimPrefix "floating_ip_" | replace "/" "-" | replace "_" "-" -}}
{{- end -}}

{{/* volumeMounts, then volumes, of the code folders of the packages in .packages. */}}
{{- define "doks-floating-ip.codeMounts" -}}
{{- range $folder := include "doks-floating-ip.codeFolders" .root | fromJsonArray }}
{{- if has (regexReplaceAll "/.*" $folder "") $.packages }}
- name: {{ include "doks-floating-ip.codeVolume" $folder }}
  mountPath: /app/{{ $folder }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "doks-floating-ip.codeVolumes" -}}
{{- range $folder := include "doks-floating-ip.codeFolders" .root | fromJsonArray }}
{{- if has (regexReplaceAll "/.*" $folder "") $.packages }}
- name: {{ include "doks-floating-ip.codeVolume" $folder }}
  configMap:
    name: {{ include "doks-floating-ip.codeConfigMap" $folder }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The values without which nothing can work: each missing one named, with where to find it,
in one message (the schema checks the form of those that are set). */}}
{{- define "doks-floating-ip.requireValues" -}}
{{- $missing := list -}}
{{- if not .Values.functionUrl -}}
{{- $missing = append $missing "functionUrl: the function's web URL (doctl serverless functions get floating-ip/reconcile --url)" -}}
{{- end -}}
{{- if not .Values.clusterId -}}
{{- $missing = append $missing "clusterId: the DOKS cluster's id (doctl kubernetes cluster get <name> --format ID)" -}}
{{- end -}}
{{- if and (not .Values.webSecret.value) (not .Values.webSecret.existingSecret) -}}
{{- $missing = append $missing "webSecret.value (the shared secret, the function's WEB_SECRET) or webSecret.existingSecret (a Secret with the key WEB_SECRET)" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "set the required values (--set or a values file):\n  %s" (join "\n  " $missing)) -}}
{{- end -}}
{{- if and .Values.webSecret.value .Values.webSecret.existingSecret -}}
{{- fail "set only one of webSecret.value and webSecret.existingSecret" -}}
{{- end -}}
{{- end -}}
