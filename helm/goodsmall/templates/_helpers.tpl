{{/*
Chart name, truncated to the 63 characters a label value may hold.
*/}}
{{- define "goodsmall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, prefixed with the chart name
unless it already contains it. Components append "-<component>".
*/}}
{{- define "goodsmall.fullname" -}}
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

{{- define "goodsmall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Per-component helpers. Call with (dict "context" $ "component" "operator").
*/}}
{{- define "goodsmall.componentFullname" -}}
{{- printf "%s-%s" (include "goodsmall.fullname" .context) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "goodsmall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "goodsmall.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "goodsmall.labels" -}}
helm.sh/chart: {{ include "goodsmall.chart" .context }}
{{ include "goodsmall.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: goodsmall
{{- end }}

{{/*
Operator shorthands.
*/}}
{{- define "goodsmall.operator.fullname" -}}
{{- include "goodsmall.componentFullname" (dict "context" . "component" "operator") }}
{{- end }}

{{- define "goodsmall.operator.labels" -}}
{{- include "goodsmall.labels" (dict "context" . "component" "operator") }}
{{- end }}

{{- define "goodsmall.operator.selectorLabels" -}}
{{- include "goodsmall.selectorLabels" (dict "context" . "component" "operator") }}
{{- end }}

{{- define "goodsmall.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "goodsmall.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "goodsmall.operator.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (.Values.operator.image.tag | default .Chart.AppVersion) }}
{{- end }}
