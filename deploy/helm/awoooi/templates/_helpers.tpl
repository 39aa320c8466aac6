{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "awoooi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, unless it already contains the chart name. */}}
{{- define "awoooi.fullname" -}}
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

{{- define "awoooi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "awoooi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "awoooi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "awoooi.labels" -}}
helm.sh/chart: {{ include "awoooi.chart" . }}
{{ include "awoooi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: awoooi
{{- end }}

{{- define "awoooi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "awoooi.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "awoooi.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The chart's own Secret (database URL and the values under `secrets`). */}}
{{- define "awoooi.secretName" -}}
{{- include "awoooi.fullname" . }}
{{- end }}

{{/* Keys the chart's own Secret carries, as a dict key -> value (empty dict: no Secret). */}}
{{- define "awoooi.secretData" -}}
{{- $data := dict }}
{{- if and .Values.database.url (not .Values.database.existingSecret) }}
{{- $_ := set $data "database-url" .Values.database.url }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- with .Values.secrets.vaultKey }}{{ $_ := set $data "vault-key" . }}{{ end }}
{{- with .Values.secrets.webhookSecret }}{{ $_ := set $data "webhook-secret" . }}{{ end }}
{{- with .Values.secrets.brainApiKey }}{{ $_ := set $data "brain-api-key" . }}{{ end }}
{{- with .Values.secrets.slackSigningSecret }}{{ $_ := set $data "slack-signing-secret" . }}{{ end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* One environment variable from a Secret key: (list NAME SECRET KEY OPTIONAL). */}}
{{- define "awoooi.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
      {{- if index . 3 }}
      optional: true
      {{- end }}
{{- end }}

{{/*
Refuses values the server cannot run with. Scale-out needs PostgreSQL (a SQLite file in an
emptyDir is per pod and lost with it), one vault key for every replica, and the Redis bus.
*/}}
{{- define "awoooi.validate" -}}
{{- $v := .Values }}
{{- if not (or $v.database.url $v.database.existingSecret) }}
{{- fail "database.url or database.existingSecret is required: the chart runs AWOOOI on PostgreSQL" }}
{{- end }}
{{- if and $v.database.url (not (hasPrefix "postgres" $v.database.url)) }}
{{- fail "database.url must be a postgres:// or postgresql:// URL (SQLite cannot be shared by pods)" }}
{{- end }}
{{- if not (or $v.secrets.vaultKey $v.secrets.existingSecret) }}
{{- fail "secrets.vaultKey (64 hex characters, `openssl rand -hex 32`) or secrets.existingSecret (key vault-key) is required: every replica must seal with the same key" }}
{{- end }}
{{- if and $v.secrets.vaultKey (not (regexMatch "^[0-9a-fA-F]{64}$" $v.secrets.vaultKey)) }}
{{- fail "secrets.vaultKey must be 64 hex characters (`openssl rand -hex 32`)" }}
{{- end }}
{{- if not (has $v.bus.backend (list "memory" "redis")) }}
{{- fail "bus.backend must be memory or redis" }}
{{- end }}
{{- if and (gt (int $v.replicaCount) 1) (ne $v.bus.backend "redis") }}
{{- fail "replicaCount > 1 needs bus.backend=redis: with the in-process bus a replica never hears of the others' changes" }}
{{- end }}
{{- if and (eq $v.bus.backend "redis") (not (or $v.redis.url $v.redis.existingSecret)) }}
{{- fail "bus.backend=redis needs Redis: redis.url or redis.existingSecret" }}
{{- end }}
{{- if and $v.redis.url (not (regexMatch "^rediss?://" $v.redis.url)) }}
{{- fail "redis.url must be a redis:// or rediss:// URL" }}
{{- end }}
{{- if not (has $v.config.logFormat (list "text" "json")) }}
{{- fail "config.logFormat must be text or json" }}
{{- end }}
{{- end }}
