{{/* Names, labels and the checks that span several values. */}}

{{- define "certroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's name for its objects: the release name when it already says "certroute" (so
`helm install certroute …` gives Service `certroute`, the name the controller's challenge route
points at by default), else "<release>-certroute".
*/}}
{{- define "certroute.fullname" -}}
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

{{- define "certroute.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "certroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "certroute.labels" -}}
{{ include "certroute.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "certroute.chart" . }}
{{- end -}}

{{- define "certroute.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "certroute.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "certroute.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The responder Service; the controller's challenge route and the plugin point at it. */}}
{{- define "certroute.responderService" -}}
{{- include "certroute.fullname" . -}}
{{- end -}}

{{- define "certroute.responderURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "certroute.responderService" .) .Release.Namespace (int .Values.responder.port) -}}
{{- end -}}

{{/* Modes, as the controller decides them in src/cli/controller.ts. */}}
{{- define "certroute.routeMode" -}}
{{- if and (eq .Values.wiring "route") (not .Values.shimOnly) }}true{{ end -}}
{{- end -}}

{{- define "certroute.middlewareMode" -}}
{{- if and (eq .Values.wiring "middleware") (not .Values.shimOnly) }}true{{ end -}}
{{- end -}}

{{- define "certroute.gatewayMode" -}}
{{- if and (eq .Values.wiring "gateway") (not .Values.shimOnly) }}true{{ end -}}
{{- end -}}

{{/* The Ingress and Gateway shims run beside the cert-manager controllers, never in shimOnly mode. */}}
{{- define "certroute.gatewayShim" -}}
{{- if and .Values.gatewayAPI.enabled (not .Values.shimOnly) }}true{{ end -}}
{{- end -}}

{{/* The controller reads Traefik's Service at start-up unless the self-check address is given. */}}
{{- define "certroute.readsTraefikService" -}}
{{- if not .Values.traefik.selfCheckAddress }}true{{ end -}}
{{- end -}}

{{- define "certroute.pluginModule" -}}
github.com/certroute/certroute-challenge
{{- end -}}

{{- define "certroute.middlewareName" -}}
{{- printf "%s-challenge" (include "certroute.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* How Traefik's static configuration names the Middleware: <namespace>-<name>@kubernetescrd. */}}
{{- define "certroute.middlewareRef" -}}
{{- printf "%s-%s@kubernetescrd" .Values.traefik.namespace (include "certroute.middlewareName" .) -}}
{{- end -}}

{{/*
Checks the schema cannot express with a readable message. Included by the Deployment, so every
render runs them.
*/}}
{{- define "certroute.validate" -}}
{{- if and .Values.clusterIssuers.letsencrypt.enabled (not .Values.acme.email) -}}
{{- fail "clusterIssuers.letsencrypt.enabled=true needs acme.email: Let's Encrypt registers the ACME account with it and sends expiry notices there. Set --set acme.email=you@example.com, or leave clusterIssuers.letsencrypt.enabled=false and create your own ClusterIssuer." -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) .Values.rbac.create (not .Values.serviceAccount.name) -}}
{{- fail "rbac.create=true with serviceAccount.create=false needs serviceAccount.name: the RBAC bindings must name the ServiceAccount the controller runs as." -}}
{{- end -}}
{{- end -}}

{{/* The TLS-ALPN-01 responder runs: the controller reconciles (not shim-only) and has the port. */}}
{{- define "certroute.tlsAlpn" -}}
{{- if and (not .Values.shimOnly) .Values.responder.tlsAlpnPort }}true{{ end -}}
{{- end -}}
