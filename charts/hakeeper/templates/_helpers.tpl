{{/* Labels every object of the chart carries. */}}
{{- define "hakeeper.labels" -}}
app.kubernetes.io/name: hakeeper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
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
