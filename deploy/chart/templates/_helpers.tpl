{{/* Names and labels shared by every object of the release. */}}
{{- define "resource-broker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "resource-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "resource-broker.labels" -}}
{{ include "resource-broker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "resource-broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "resource-broker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the kcp kubeconfig: the one named, or the one this chart makes. */}}
{{- define "resource-broker.kubeconfigSecret" -}}
{{- if .Values.kcp.existingSecret -}}
{{- .Values.kcp.existingSecret -}}
{{- else if .Values.kcp.kubeconfig -}}
{{- printf "%s-kcp-kubeconfig" (include "resource-broker.fullname" .) -}}
{{- else -}}
{{- fail "set kcp.existingSecret (a Secret holding the kcp kubeconfig) or kcp.kubeconfig (its text); README: Install with Helm" -}}
{{- end -}}
{{- end -}}
