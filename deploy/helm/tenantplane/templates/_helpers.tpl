{{/* Names and labels. */}}
{{- define "tenantplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tenantplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "config" */}}
{{- define "tenantplane.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tenantplane.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tenantplane.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "tenantplane.fullname" .)) -}}
{{- end -}}

{{- define "tenantplane.secretsSecret" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-master-keys" (include "tenantplane.fullname" .)) -}}
{{- end -}}

{{/* Environment of every tenantplane container. */}}
{{- define "tenantplane.env" -}}
- name: TENANTPLANE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tenantplane.databaseSecret" . }}
      key: database-url
{{- range $name, $value := .Values.settings.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Volumes every pod mounts: credentials and TLS for NATS (when configured), /tmp. */}}
{{- define "tenantplane.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.nats.credentialsSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.nats.credentialsSecret }}
{{- end }}
{{- if .Values.nats.tlsSecret }}
- name: nats-tls
  secret:
    secretName: {{ .Values.nats.tlsSecret }}
{{- end }}
{{- end -}}

{{- define "tenantplane.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.nats.credentialsSecret }}
- name: nats-creds
  mountPath: /etc/tenantplane/nats-creds
  readOnly: true
{{- end }}
{{- if .Values.nats.tlsSecret }}
- name: nats-tls
  mountPath: /etc/tenantplane/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Probes and the ops port, the same for every container. */}}
{{- define "tenantplane.probes" -}}
ports:
  - name: ops
    containerPort: {{ .Values.ops.port }}
    protocol: TCP
livenessProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: ops}
  periodSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{/* The pod template shared by every Deployment:
     dict "root" $ "component" "config" "role" "config" "args" (list ...) "resources" (dict) ...
     ("role": the NATS user it connects as, with nats.usersSecret) */}}
{{- define "tenantplane.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "tenantplane.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- with .extraLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/settings: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .serviceAccount }}
  serviceAccountName: {{ .serviceAccount }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: 60
  containers:
    - name: {{ .component }}
      image: {{ include "tenantplane.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: [tenantctl]
      args:
        {{- toYaml .args | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "tenantplane.fullname" $root }}-settings
      env:
        {{- include "tenantplane.env" $root | nindent 8 }}
        {{- if .masterKeys }}
        - name: TENANTPLANE_SECRETS_MASTER_KEY_FILE
          value: /etc/tenantplane/master-keys/master-keys
        {{- end }}
        {{- if and $root.Values.nats.usersSecret .role }}
        - name: TENANTPLANE_NATS_USER
          value: {{ .role | quote }}
        - name: TENANTPLANE_NATS_INBOX_PREFIX
          value: {{ printf "_INBOX_%s" .role | quote }}
        - name: TENANTPLANE_NATS_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.nats.usersSecret }}
              key: {{ .role | quote }}
        {{- end }}
      {{- include "tenantplane.probes" $root | nindent 6 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "tenantplane.volumeMounts" $root | nindent 8 }}
        {{- if .masterKeys }}
        - name: master-keys
          mountPath: /etc/tenantplane/master-keys
          readOnly: true
        {{- end }}
        {{- if .poolTemplate }}
        - name: pool-template
          mountPath: /etc/tenantplane/pool-template
          readOnly: true
        {{- end }}
  volumes:
    {{- include "tenantplane.volumes" $root | nindent 4 }}
    {{- if .masterKeys }}
    - name: master-keys
      secret:
        secretName: {{ include "tenantplane.secretsSecret" $root }}
    {{- end }}
    {{- if .poolTemplate }}
    - name: pool-template
      configMap:
        name: {{ include "tenantplane.fullname" $root }}-pool-template
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A worker pool's Deployment: dict "root" $ "pool" (dict name replicas threads kinds resources) */}}
{{- define "tenantplane.poolDeployment" -}}
{{- $root := .root -}}
{{- $pool := .pool -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "tenantplane.fullname" $root }}-pool-{{ $pool.name }}
  labels:
    {{- include "tenantplane.labels" $root | nindent 4 }}
    app.kubernetes.io/component: worker
    tenantplane.io/pool: {{ $pool.name | quote }}
spec:
  replicas: {{ $pool.replicas }}
  selector:
    matchLabels:
      {{- include "tenantplane.selectorLabels" (dict "root" $root "component" "worker") | nindent 6 }}
      tenantplane.io/pool: {{ $pool.name | quote }}
  template:
    {{- $args := list "worker" "run" "--pool" $pool.name "--threads" (toString $pool.threads) "--kinds" $pool.kinds }}
    {{- include "tenantplane.podTemplate" (dict "root" $root "component" "worker" "args" $args "resources" $pool.resources "extraLabels" (dict "tenantplane.io/pool" $pool.name) "role" (printf "pool-%s" $pool.name)) | nindent 4 }}
{{- end -}}
