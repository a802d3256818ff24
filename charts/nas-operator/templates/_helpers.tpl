{{/* helm create's helpers: names, labels, selector labels. */}}

{{- define "nas-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nas-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nas-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nas-operator.labels" -}}
helm.sh/chart: {{ include "nas-operator.chart" . }}
{{ include "nas-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nas-operator
{{- end }}

{{- define "nas-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nas-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nas-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nas-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether to render monitoring.coreos.com objects: forced by values, else when served. */}}
{{- define "nas-operator.monitoring" -}}
{{- $enabled := .Values.serviceMonitor.enabled }}
{{- if or (eq (toString $enabled) "true") (and (kindIs "invalid" $enabled) (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}true{{- end }}
{{- end }}

{{/* A number as text, or "none" for null (0 stays 0, unlike `default`). */}}
{{- define "nas-operator.orNone" -}}
{{- if kindIs "invalid" . }}none{{ else }}{{ int64 . }}{{ end }}
{{- end }}
