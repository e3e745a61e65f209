{{- define "etpro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "etpro.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "etpro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "etpro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "etpro.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "etpro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "etpro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "etpro.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the token, or "" when no token is configured. */}}
{{- define "etpro.tokenSecret" -}}
{{- if .Values.token.existingSecret -}}
{{- .Values.token.existingSecret -}}
{{- else if .Values.token.value -}}
{{- printf "%s-token" (include "etpro.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Address the probes use: the status server's own, or loopback when it binds everywhere. */}}
{{- define "etpro.probeHost" -}}
{{- $addr := toString .Values.config.ETPRO_STATUS_ADDR -}}
{{- if has $addr (list "" "0.0.0.0" "::" "localhost") -}}127.0.0.1{{- else -}}{{ $addr }}{{- end -}}
{{- end -}}

{{- define "etpro.volume" -}}
{{- $v := index .root.Values.persistence .name -}}
- name: {{ .name }}
{{- if eq $v.type "hostPath" }}
  hostPath:
    path: {{ $v.hostPath }}
    type: DirectoryOrCreate
{{- else }}
  emptyDir:
    {{- with $v.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}
