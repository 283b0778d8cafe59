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
The five deployables, in the order NOTES.txt lists them.
*/}}
{{- define "goodsmall.components" -}}
user product order payment operator
{{- end }}

{{/*
Per-component helpers. Call with (dict "context" $ "component" "order").
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
"true" when an HPA or a KEDA ScaledObject owns the component's replica count.
*/}}
{{- define "goodsmall.autoscaled" -}}
{{- $v := index .context.Values .component }}
{{- if and $v.autoscaling $v.autoscaling.enabled }}true{{ end }}
{{- end }}

{{/*
Base URL of a component's Service inside the cluster.
*/}}
{{- define "goodsmall.url" -}}
{{- printf "http://%s:%v" (include "goodsmall.componentFullname" .) (index .context.Values .component).service.port }}
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
during a drop; the operator applies the annotation at once.
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
Secrets. Each is one you made (existingSecret) or one the chart makes from inline
values.
------------------------------------------------------------------------------ */}}

{{- define "goodsmall.mysql.chartMade" -}}
{{- if not .Values.mysql.existingSecret }}true{{ end }}
{{- end }}
{{- define "goodsmall.mysql.secretName" -}}
{{- if include "goodsmall.mysql.chartMade" . }}{{ include "goodsmall.fullname" . }}-mysql{{ else }}{{ .Values.mysql.existingSecret }}{{ end }}
{{- end }}
{{/* The database URL of service .component when the chart makes the Secret. */}}
{{- define "goodsmall.mysql.url" -}}
{{- index .context.Values.mysql.urls .component }}
{{- end }}

{{- define "goodsmall.redis.chartMade" -}}
{{- if not .Values.redis.existingSecret }}true{{ end }}
{{- end }}
{{- define "goodsmall.redis.secretName" -}}
{{- if include "goodsmall.redis.chartMade" . }}{{ include "goodsmall.fullname" . }}-redis{{ else }}{{ .Values.redis.existingSecret }}{{ end }}
{{- end }}
{{- define "goodsmall.redis.url" -}}
{{- .Values.redis.url }}
{{- end }}

{{- define "goodsmall.kafka.brokers" -}}
{{- .Values.kafka.brokers }}
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
{{- $files := list "shared/secret.yaml" "user/secret.yaml" "operator/secret.yaml" }}
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

{{/* ------------------------------------------------------------------------------
Configuration: each component's GOODSMALL_* settings, as its ConfigMap's data.
------------------------------------------------------------------------------ */}}

{{/* Settings of the four services: listener, logs, and (.kafka) the event bus. */}}
{{- define "goodsmall.config.common" -}}
{{- $v := .context.Values }}
GOODSMALL_HTTP__HOST: {{ $v.http.host | quote }}
GOODSMALL_HTTP__PORT: "8080"
GOODSMALL_HTTP__BODY_LIMIT_BYTES: {{ $v.http.bodyLimitBytes | int64 | quote }}
GOODSMALL_HTTP__REQUEST_TIMEOUT_SECS: {{ $v.http.requestTimeoutSecs | int64 | quote }}
GOODSMALL_HTTP__BACKLOG: {{ $v.http.backlog | int64 | quote }}
{{- with $v.http.trustedProxies }}
GOODSMALL_HTTP__TRUSTED_PROXIES: {{ . | quote }}
{{- end }}
GOODSMALL_LOG__FORMAT: {{ $v.log.format | quote }}
GOODSMALL_LOG__FILTER: {{ $v.log.filter | quote }}
{{- if .kafka }}
GOODSMALL_KAFKA__BROKERS: {{ include "goodsmall.kafka.brokers" .context | quote }}
{{- with $v.kafka.namespace }}
GOODSMALL_KAFKA__NAMESPACE: {{ . | quote }}
{{- end }}
GOODSMALL_KAFKA__SESSION_TIMEOUT_MS: {{ $v.kafka.sessionTimeoutMs | int64 | quote }}
GOODSMALL_KAFKA__CLIENT_ID: {{ include "goodsmall.componentFullname" . | quote }}
{{- end }}
{{- $section := upper .component }}
GOODSMALL_{{ $section }}__DATABASE__MAX_CONNECTIONS: {{ (index $v .component).database.maxConnections | quote }}
GOODSMALL_{{ $section }}__DATABASE__CREATE_IF_MISSING: {{ $v.mysql.createIfMissing | quote }}
{{- end }}

{{/* A component's own `config` map, last (it may override the above). */}}
{{- define "goodsmall.config.extra" -}}
{{- range $key, $value := (index .context.Values .component).config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{- define "goodsmall.config.user" -}}
{{- $ctx := . }}
{{- $u := .Values.user }}
{{- include "goodsmall.config.common" (dict "context" $ctx "component" "user") }}
GOODSMALL_USER__MAIL__FROM: {{ $u.mail.from | quote }}
GOODSMALL_USER__MAIL__MAX_ATTEMPTS: {{ $u.mail.maxAttempts | int64 | quote }}
GOODSMALL_USER__TOKENS__ACCESS_TTL_SECS: {{ $u.tokens.accessTtlSecs | int64 | quote }}
GOODSMALL_USER__TOKENS__REFRESH_TTL_SECS: {{ $u.tokens.refreshTtlSecs | int64 | quote }}
GOODSMALL_USER__LOGIN__FREE_FAILURES: {{ $u.login.freeFailures | int64 | quote }}
GOODSMALL_USER__LOGIN__BASE_DELAY_SECS: {{ $u.login.baseDelaySecs | int64 | quote }}
GOODSMALL_USER__LOGIN__MAX_DELAY_SECS: {{ $u.login.maxDelaySecs | int64 | quote }}
GOODSMALL_USER__LOGIN__ACCOUNT_CEILING: {{ $u.login.accountCeiling | int64 | quote }}
GOODSMALL_USER__LOGIN__WINDOW_SECS: {{ $u.login.windowSecs | int64 | quote }}
GOODSMALL_USER__PASSWORD_HASHING__MEMORY_KIB: {{ $u.passwordHashing.memoryKib | int64 | quote }}
GOODSMALL_USER__PASSWORD_HASHING__ITERATIONS: {{ $u.passwordHashing.iterations | int64 | quote }}
{{- with $u.bootstrapAdmin.email }}
GOODSMALL_USER__BOOTSTRAP_ADMIN__EMAIL: {{ . | quote }}
GOODSMALL_USER__BOOTSTRAP_ADMIN__NAME: {{ $u.bootstrapAdmin.name | quote }}
{{- end }}
{{- include "goodsmall.config.extra" (dict "context" $ctx "component" "user") }}
{{- end }}

{{- define "goodsmall.config.product" -}}
{{- $p := .Values.product }}
{{- include "goodsmall.config.common" (dict "context" . "component" "product" "kafka" true) }}
GOODSMALL_PRODUCT__CACHE__TTL_SECS: {{ $p.cache.ttlSecs | int64 | quote }}
GOODSMALL_PRODUCT__CACHE__JITTER_SECS: {{ $p.cache.jitterSecs | int64 | quote }}
GOODSMALL_PRODUCT__CACHE__MISSING_TTL_SECS: {{ $p.cache.missingTtlSecs | int64 | quote }}
{{- include "goodsmall.config.extra" (dict "context" . "component" "product") }}
{{- end }}

{{- define "goodsmall.config.order" -}}
{{- $o := .Values.order }}
{{- include "goodsmall.config.common" (dict "context" . "component" "order" "kafka" true) }}
GOODSMALL_ORDER__GROUP_COMMITS: {{ $o.groupCommits | int64 | quote }}
GOODSMALL_ORDER__PRODUCT_API_URL: {{ $o.productApiUrl | default (include "goodsmall.url" (dict "context" . "component" "product")) | quote }}
GOODSMALL_ORDER__LIFECYCLE__SHIP_AFTER_SECS: {{ $o.lifecycle.shipAfterSecs | int64 | quote }}
GOODSMALL_ORDER__LIFECYCLE__DELIVER_AFTER_SECS: {{ $o.lifecycle.deliverAfterSecs | int64 | quote }}
GOODSMALL_ORDER__LIFECYCLE__RETURN_WINDOW_SECS: {{ $o.lifecycle.returnWindowSecs | int64 | quote }}
GOODSMALL_ORDER__LIFECYCLE__RETURN_COMPLETE_AFTER_SECS: {{ $o.lifecycle.returnCompleteAfterSecs | int64 | quote }}
GOODSMALL_ORDER__LIFECYCLE__ORPHAN_GRACE_SECS: {{ $o.lifecycle.orphanGraceSecs | int64 | quote }}
{{- include "goodsmall.config.extra" (dict "context" . "component" "order") }}
{{- end }}

{{- define "goodsmall.config.payment" -}}
{{- $p := .Values.payment }}
{{- include "goodsmall.config.common" (dict "context" . "component" "payment" "kafka" true) }}
GOODSMALL_PAYMENT__TIMEOUT_SECS: {{ $p.timeoutSecs | int64 | quote }}
GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE: {{ $p.simulatedPsp.failureRate | quote }}
GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS: {{ $p.simulatedPsp.latencyMillis | int64 | quote }}
{{- include "goodsmall.config.extra" (dict "context" . "component" "payment") }}
{{- end }}

{{- define "goodsmall.config.operator" -}}
{{- $op := .Values.operator }}
GOODSMALL_OPERATOR__PRODUCT_API_URL: {{ $op.productApiUrl | default (include "goodsmall.url" (dict "context" . "component" "product")) | quote }}
GOODSMALL_OPERATOR__ORDER_API_URL: {{ $op.orderApiUrl | default (include "goodsmall.url" (dict "context" . "component" "order")) | quote }}
GOODSMALL_OPERATOR__ORDER_DEPLOYMENT: {{ include "goodsmall.operator.orderDeployment" . | quote }}
GOODSMALL_OPERATOR__PAYMENT_DEPLOYMENT: {{ include "goodsmall.operator.paymentDeployment" . | quote }}
GOODSMALL_OPERATOR__LEASE_NAME: {{ $op.leaseName | quote }}
GOODSMALL_OPERATOR__LEASE_DURATION_SECS: {{ $op.leaseDurationSecs | int64 | quote }}
GOODSMALL_OPERATOR__REFRESH_SECS: {{ $op.refreshSecs | int64 | quote }}
GOODSMALL_OPERATOR__LISTEN: "0.0.0.0:8080"
GOODSMALL_LOG__FORMAT: {{ .Values.log.format | quote }}
RUST_LOG: {{ $op.logLevel | quote }}
{{- include "goodsmall.config.extra" (dict "context" . "component" "operator") }}
{{- end }}

{{/* ------------------------------------------------------------------------------
Secret environment: each variable from its Secret's key.
------------------------------------------------------------------------------ */}}
{{- define "goodsmall.env.secret" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* Redis, the token public key and the component's database URL. */}}
{{- define "goodsmall.env.service" -}}
{{- $ctx := .context }}
{{- $section := upper .component }}
{{ include "goodsmall.env.secret" (dict "name" (printf "GOODSMALL_%s__DATABASE__URL" $section) "secret" (include "goodsmall.mysql.secretName" $ctx) "key" (printf "%s-url" .component)) }}
{{ include "goodsmall.env.secret" (dict "name" "GOODSMALL_REDIS__URL" "secret" (include "goodsmall.redis.secretName" $ctx) "key" "url") }}
{{ include "goodsmall.env.secret" (dict "name" "GOODSMALL_AUTH__PUBLIC_KEY_PEM" "secret" (include "goodsmall.tokenKeys.secretName" $ctx) "key" "public-key.pem") }}
{{- end }}

{{/* ------------------------------------------------------------------------------
Workload templates shared by the components. Each takes
(dict "context" $ "component" "<name>" ...).
------------------------------------------------------------------------------ */}}

{{- define "goodsmall.serviceAccount" -}}
{{- $v := index .context.Values .component }}
{{- if and $v.enabled $v.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "goodsmall.serviceAccountName" . }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "goodsmall.labels" . | nindent 4 }}
  {{- with $v.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if ne .component "operator" }}
# The services never call the Kubernetes API.
automountServiceAccountToken: false
{{- end }}
{{- end }}
{{- end }}

{{- define "goodsmall.configMap" -}}
{{- if (index .context.Values .component).enabled }}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
data:
  {{- include (printf "goodsmall.config.%s" .component) .context | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The Deployment. Extra keys: "env" (the container's env entries, YAML), "apiToken"
(mount the ServiceAccount token: the operator only).
*/}}
{{- define "goodsmall.deployment" -}}
{{- $ctx := .context }}
{{- $c := .component }}
{{- $v := index $ctx.Values $c }}
{{- if $v.enabled }}
{{- $podSecurity := mergeOverwrite (deepCopy $ctx.Values.podSecurityContext) $v.podSecurityContext }}
{{- $security := mergeOverwrite (deepCopy $ctx.Values.securityContext) $v.securityContext }}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
  {{- if and (include "goodsmall.operatorScales" .) (not (include "goodsmall.autoscaled" .)) }}
  annotations:
    goodsmall.io/min-replicas: {{ $v.replicaCount | quote }}
  {{- end }}
spec:
  {{- if not (or (include "goodsmall.autoscaled" .) (include "goodsmall.operatorScales" .)) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "goodsmall.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Keep every ready replica while a new one starts (a drop may be running).
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "goodsmall.labels" . | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        kubectl.kubernetes.io/default-container: {{ $c }}
        checksum/config: {{ include (printf "goodsmall.config.%s" $c) $ctx | sha256sum }}
        checksum/secrets: {{ include "goodsmall.secretsChecksum" $ctx | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "goodsmall.serviceAccountName" . }}
      automountServiceAccountToken: {{ .apiToken | default false }}
      # No <SERVICE>_PORT variables: they would land in the GOODSMALL_ namespace.
      enableServiceLinks: false
      {{- with $ctx.Values.global.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $podSecurity | nindent 8 }}
      containers:
        - name: {{ $c }}
          image: {{ include "goodsmall.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy | default $ctx.Values.global.image.pullPolicy }}
          securityContext:
            {{- toYaml $security | nindent 12 }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "goodsmall.componentFullname" . }}
          env:
            {{- .env | trim | nindent 12 }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          # /healthz answers once the process serves (after its migrations);
          # /readyz while its database and Redis answer.
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $v.startupProbe | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $v.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $v.readinessProbe | nindent 12 }}
          {{- if ne $c "operator" }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $ctx.Values.http.drainDelaySecs }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        # The root filesystem is read-only; /tmp is the only writable path.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}

{{- define "goodsmall.service" -}}
{{- $v := index .context.Values .component }}
{{- if $v.enabled }}
apiVersion: v1
kind: Service
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "goodsmall.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- end }}

{{- define "goodsmall.pdb" -}}
{{- $v := index .context.Values .component }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $v.enabled $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
spec:
  {{- if hasKey $pdb "minAvailable" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "goodsmall.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{- define "goodsmall.serviceMonitor" -}}
{{- $sm := .context.Values.serviceMonitor }}
{{- if and (index .context.Values .component).enabled $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "goodsmall.componentFullname" . }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "goodsmall.labels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/component
  selector:
    matchLabels:
      {{- include "goodsmall.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .context.Release.Namespace }}
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      {{- with $sm.interval }}
      interval: {{ . }}
      {{- end }}
      {{- with $sm.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
{{- end }}
{{- end }}

{{/*
The NetworkPolicy of a component: ingress on the http port from "from" (component
names, "entrypoint" = networkPolicy.entryPoint, "prometheus" =
networkPolicy.prometheus), egress to the components in "to" on their http port and
to the outside servers in "outbound" (networkPolicy.egress.<name>). Which component
calls which is helm/goodsmall/traffic.yaml; scripts/check_chart.py compares.
*/}}
{{- define "goodsmall.networkPolicy" -}}
{{- $ctx := .context }}
{{- $np := $ctx.Values.networkPolicy }}
{{- if and $np.enabled (index $ctx.Values .component).enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "goodsmall.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- range .from }}
    # from {{ . }}
    - ports:
        - port: 8080
          protocol: TCP
      {{- if eq . "entrypoint" }}
      {{- with $np.entryPoint }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- else if eq . "prometheus" }}
      {{- with $np.prometheus }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- else }}
      from:
        - podSelector:
            matchLabels:
              {{- include "goodsmall.selectorLabels" (dict "context" $ctx "component" .) | nindent 14 }}
      {{- end }}
    {{- end }}
  egress:
    {{- range .to }}
    # to {{ . }}
    - ports:
        - port: 8080
          protocol: TCP
      to:
        - podSelector:
            matchLabels:
              {{- include "goodsmall.selectorLabels" (dict "context" $ctx "component" .) | nindent 14 }}
    {{- end }}
    {{- range .outbound }}
    {{- $rule := index $np.egress . }}
    {{- if $rule }}
    # {{ . }}
    - ports:
        {{- toYaml $rule.ports | nindent 8 }}
      {{- with $rule.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{/*
Autoscaling of order and payment: an autoscaling/v2 HPA, or a KEDA ScaledObject.
The operator finds either by its scaleTargetRef and raises its minimum for a drop.
*/}}
{{- define "goodsmall.hpa" -}}
{{- $v := index .context.Values .component }}
{{- $as := $v.autoscaling }}
{{- if and $v.enabled $as.enabled (not $as.keda.enabled) }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
  {{- if include "goodsmall.operatorScales" . }}
  annotations:
    goodsmall.io/min-replicas: {{ $as.minReplicas | quote }}
  {{- end }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "goodsmall.componentFullname" . }}
  {{- if not (include "goodsmall.operatorScales" .) }}
  minReplicas: {{ $as.minReplicas }}
  {{- end }}
  maxReplicas: {{ $as.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $as.targetCPUUtilizationPercentage }}
  {{- with $as.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "goodsmall.scaledObject" -}}
{{- $v := index .context.Values .component }}
{{- $as := $v.autoscaling }}
{{- if and $v.enabled $as.enabled $as.keda.enabled }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  {{- include "goodsmall.metadata" . | nindent 2 }}
  {{- if include "goodsmall.operatorScales" . }}
  annotations:
    goodsmall.io/min-replicas: {{ $as.minReplicas | quote }}
  {{- end }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "goodsmall.componentFullname" . }}
  {{- if not (include "goodsmall.operatorScales" .) }}
  minReplicaCount: {{ $as.minReplicas }}
  {{- end }}
  maxReplicaCount: {{ $as.maxReplicas }}
  pollingInterval: {{ $as.keda.pollingInterval }}
  cooldownPeriod: {{ $as.keda.cooldownPeriod }}
  triggers:
    {{- if $as.keda.triggers }}
    {{- toYaml $as.keda.triggers | nindent 4 }}
    {{- else }}
    - type: cpu
      metricType: Utilization
      metadata:
        value: {{ $as.targetCPUUtilizationPercentage | quote }}
    {{- end }}
{{- end }}
{{- end }}

{{/*
Rules a schema cannot state; a wrong combination stops the install with its message.
*/}}
{{- define "goodsmall.validate" -}}
{{- range list "order" "payment" }}
{{- $as := (index $.Values .).autoscaling }}
{{- if and $as.enabled (lt (int $as.maxReplicas) (int $as.minReplicas)) }}
{{- fail (printf "%s.autoscaling.maxReplicas (%v) must be at least %s.autoscaling.minReplicas (%v)" . $as.maxReplicas . $as.minReplicas) }}
{{- end }}
{{- end }}
{{- range list "user" "product" "order" "payment" "operator" }}
{{- $pdb := (index $.Values .).podDisruptionBudget }}
{{- if and $pdb.enabled (hasKey $pdb "minAvailable") (hasKey $pdb "maxUnavailable") }}
{{- fail (printf "%s.podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)" .) }}
{{- end }}
{{- end }}
{{- if and .Values.user.bootstrapAdmin.email (not .Values.user.existingSecret) (not .Values.user.bootstrapAdminPassword) }}
{{- fail "user.bootstrapAdmin.email is set: user.bootstrapAdminPassword (or user.existingSecret with key bootstrap-admin-password) is required" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled: httpRoute.parentRefs must name the Gateway to attach to" }}
{{- end }}
{{- /* The dev mailbox is each process's memory: with two replicas, half the reads of a
verification code would miss it. */}}
{{- if and (eq .Values.user.mailTransport "dev-mailbox") (gt (int .Values.user.replicaCount) 1) }}
{{- fail (printf "user.mailTransport dev-mailbox keeps mail in one pod's memory: set user.replicaCount to 1 (it is %v), or use an smtp:// transport" .Values.user.replicaCount) }}
{{- end }}
{{- end }}
