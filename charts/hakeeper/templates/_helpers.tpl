{{/* Labels every object of the chart carries, the CRDs, RBAC and
admission policies hack/chart-sync.sh copies from config/ included. */}}
{{- define "hakeeper.labels" -}}
app.kubernetes.io/name: hakeeper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The manager pods' labels the Deployment selects them by (and the
metrics Service, PodMonitor and PodDisruptionBudget): fixed, as a
Deployment's selector is immutable. */}}
{{- define "hakeeper.managerSelector" -}}
app.kubernetes.io/name: hakeeper
app.kubernetes.io/component: manager
{{- end -}}

{{/* An image reference from {repository, tag, digest} (dict "image"
.Values.image.X "ctx" $): repository@digest when a digest is set (the tag
is then ignored, as in cert-manager's chart), else repository:tag, the tag
defaulting to the chart's appVersion. The manager runs exactly this string
and the admission policy allows exactly it. */}}
{{- define "hakeeper.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* --zap-log-level's value: a number from a values file is a float64 to
Helm, which prints 100000000 as 1e+08; as an int64 it prints as written. */}}
{{- define "hakeeper.logLevel" -}}
{{- $l := .Values.manager.logLevel -}}
{{- if kindIs "float64" $l }}{{ int64 $l }}{{ else }}{{ $l }}{{ end -}}
{{- end -}}

{{/* How a ServiceMonitor or PodMonitor endpoint reaches hakeeper's metrics:
HTTPS with self-signed certificates, and a Bearer token the API server
authenticates and authorizes (ClusterRole hakeeper-metrics-reader). */}}
{{- define "hakeeper.scrapeEndpoint" -}}
{{- $m := .Values.metrics.monitor -}}
scheme: https
tlsConfig:
  insecureSkipVerify: true
{{- if eq $m.auth "PrometheusServiceAccount" }}
bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- else }}
authorization:
  type: Bearer
  credentials:
    {{- if $m.tokenSecret.name }}
    name: {{ $m.tokenSecret.name }}
    key: {{ $m.tokenSecret.key }}
    {{- else }}
    name: hakeeper-metrics-scraper-token
    key: token
    {{- end }}
{{- end }}
interval: {{ $m.interval }}
scrapeTimeout: {{ $m.scrapeTimeout }}
{{- end -}}

{{/* Labels of a ServiceMonitor or PodMonitor (dict ctx, component): the
chart's, then metrics.monitor.labels where they do not clash. */}}
{{- define "hakeeper.monitorLabels" -}}
{{- $own := fromYaml (include "hakeeper.labels" .ctx) -}}
{{- $_ := set $own "app.kubernetes.io/component" .component -}}
{{- toYaml (merge $own .ctx.Values.metrics.monitor.labels) -}}
{{- end -}}

{{/* A label map as k=v,k=v, sorted. */}}
{{- define "hakeeper.inlineLabels" -}}
{{- $pairs := list -}}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end -}}
{{- join "," $pairs -}}
{{- end -}}
