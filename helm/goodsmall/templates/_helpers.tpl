{{/*
Names, labels and small fragments only: each object's YAML is in the template file of
its kind (deployments.yaml, services.yaml, ...), which ranges over the components.
Per-component helpers take (dict "context" $ "component" "order").
*/}}

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
Object metadata: name, namespace and labels of a component's object.
*/}}
{{- define "goodsmall.metadata" -}}
name: {{ include "goodsmall.componentFullname" . }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "goodsmall.labels" . | nindent 2 }}
{{- end }}

{{/*
`<registry>/<repository>:<tag>` (or `@<digest>`), each falling back to global.image.
*/}}
{{- define "goodsmall.image" -}}
{{- $v := index .context.Values .component }}
{{- $global := .context.Values.global.image }}
{{- $registry := $v.image.registry | default $global.registry }}
{{- $ref := printf "%s/%s" $registry $v.image.repository }}
{{- if not $registry }}{{ $ref = $v.image.repository }}{{ end }}
{{- if $v.image.digest }}
{{- printf "%s@%s" $ref $v.image.digest }}
{{- else }}
{{- printf "%s:%s" $ref ($v.image.tag | default $global.tag | default .context.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "goodsmall.serviceAccountName" -}}
{{- $sa := (index .context.Values .component).serviceAccount }}
{{- if $sa.create }}
{{- default (include "goodsmall.componentFullname" .) $sa.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false" .component .component) $sa.name }}
{{- end }}
{{- end }}

{{/*
Base URL of a component's Service inside the cluster.
*/}}
{{- define "goodsmall.url" -}}
{{- printf "http://%s:%v" (include "goodsmall.componentFullname" .) (index .context.Values .component).service.port }}
{{- end }}

{{/*
"true" when an HPA or a KEDA ScaledObject owns the component's replica count.
*/}}
{{- define "goodsmall.autoscaled" -}}
{{- $v := index .context.Values .component }}
{{- if and $v.autoscaling $v.autoscaling.enabled }}true{{ end }}
{{- end }}

{{/*
The Deployments the operator scales (and the only ones its RBAC names).
*/}}
{{- define "goodsmall.operator.orderDeployment" -}}
{{- .Values.operator.orderDeployment | default (include "goodsmall.componentFullname" (dict "context" . "component" "order")) }}
{{- end }}
{{- define "goodsmall.operator.paymentDeployment" -}}
{{- .Values.operator.paymentDeployment | default (include "goodsmall.componentFullname" (dict "context" . "component" "payment")) }}
{{- end }}

{{/*
"true" when the operator owns this component's replicas (or its autoscaler's minimum).
The chart then writes them as the goodsmall.io/min-replicas annotation and never the
field, so Helm and the operator never own the same field and `helm upgrade` works
during a drop; the operator applies the annotation at once. deployments.yaml,
horizontalpodautoscalers.yaml and scaledobjects.yaml ask it.
*/}}
{{- define "goodsmall.operatorScales" -}}
{{- $ctx := .context }}
{{- if $ctx.Values.operator.enabled }}
{{- $scaled := list (include "goodsmall.operator.orderDeployment" $ctx) (include "goodsmall.operator.paymentDeployment" $ctx) }}
{{- if has (include "goodsmall.componentFullname" .) $scaled }}true{{ end }}
{{- end }}
{{- end }}

{{/*
Operator shorthands (rbac.yaml and NOTES.txt).
*/}}
{{- define "goodsmall.operator.fullname" -}}
{{- include "goodsmall.componentFullname" (dict "context" . "component" "operator") }}
{{- end }}
{{- define "goodsmall.operator.labels" -}}
{{- include "goodsmall.labels" (dict "context" . "component" "operator") }}
{{- end }}
{{- define "goodsmall.operator.serviceAccountName" -}}
{{- include "goodsmall.serviceAccountName" (dict "context" . "component" "operator") }}
{{- end }}

{{/* ------------------------------------------------------------------------------
Secret names. Each Secret is one you made (existingSecret) or one the chart makes from
inline values (secrets-*.yaml).
------------------------------------------------------------------------------ */}}

{{- define "goodsmall.mysql.chartMade" -}}
{{- if not .Values.mysql.existingSecret }}true{{ end }}
{{- end }}
{{- define "goodsmall.mysql.secretName" -}}
{{- if include "goodsmall.mysql.chartMade" . }}{{ include "goodsmall.fullname" . }}-mysql{{ else }}{{ .Values.mysql.existingSecret }}{{ end }}
{{- end }}

{{- define "goodsmall.redis.chartMade" -}}
{{- if not .Values.redis.existingSecret }}true{{ end }}
{{- end }}
{{- define "goodsmall.redis.secretName" -}}
{{- if include "goodsmall.redis.chartMade" . }}{{ include "goodsmall.fullname" . }}-redis{{ else }}{{ .Values.redis.existingSecret }}{{ end }}
{{- end }}

{{- define "goodsmall.tokenKeys.secretName" -}}
{{- .Values.tokenKeys.existingSecret | default (printf "%s-token-keys" (include "goodsmall.fullname" .)) }}
{{- end }}
{{- define "goodsmall.internalKeys.secretName" -}}
{{- .Values.internalKeys.existingSecret | default (printf "%s-internal-keys" (include "goodsmall.fullname" .)) }}
{{- end }}
{{- define "goodsmall.user.secretName" -}}
{{- .Values.user.existingSecret | default (printf "%s-user" (include "goodsmall.fullname" .)) }}
{{- end }}

{{/*
The user service's mail transport when the chart knows it (inline), else "".
*/}}
{{- define "goodsmall.user.mailTransport" -}}
{{- if not .Values.user.existingSecret }}{{ .Values.user.mailTransport }}{{ end }}
{{- end }}

{{/*
Every Secret the chart makes, as one string: its hash in each pod's annotations rolls
the pods when one changes.
*/}}
{{- define "goodsmall.secretsChecksum" -}}
{{- $files := list "secrets-servers.yaml" "secrets-user.yaml" "secrets-operator.yaml" }}
{{- range $files }}{{ include (print $.Template.BasePath "/" .) $ }}{{ end }}
{{- end }}

{{/* ------------------------------------------------------------------------------
The public routes: each /api prefix and the component serving it, read off the
services' routers (services/<name>/src/routes). Ingress and HTTPRoute are both made from
this one table; helm/goodsmall/traffic.yaml lists the same and scripts/check_chart.py
compares both with the code. Nothing else is routed: /internal/..., /metrics,
/healthz and /readyz stay inside the cluster. /api/dev (the dev mailbox, which shows
verification codes) only exists while the user service's mail transport is
dev-mailbox. /api/openapi.json is the whole API, which every service serves alike.
------------------------------------------------------------------------------ */}}
{{- define "goodsmall.routes" -}}
- { prefix: /api/openapi.json, component: user }
- { prefix: /api/auth, component: user }
- { prefix: /api/users, component: user }
{{- if eq (include "goodsmall.user.mailTransport" .) "dev-mailbox" }}
- { prefix: /api/dev, component: user }
{{- end }}
- { prefix: /api/products, component: product }
- { prefix: /api/cart, component: product }
- { prefix: /api/sales, component: order }
- { prefix: /api/orders, component: order }
- { prefix: /api/payments, component: payment }
{{- end }}
