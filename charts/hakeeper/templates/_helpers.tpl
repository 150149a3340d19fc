{{/* Labels every object of the chart carries. */}}
{{- define "hakeeper.labels" -}}
app.kubernetes.io/name: hakeeper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
