#!/usr/bin/env bash
# Smoke check of the running cluster: node Ready; a Deployment of the locally built probe HTTP
# server becomes Ready; its ClusterIP Service answers from the host (curl to the service IP)
# and from another pod through its DNS name; `kubectl top node` works. Cleans up its objects.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NS=cluster-smoke-$(date +%s) # fresh name: no stale DNS answers from an earlier run
T0=$(date +%s)
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'PASS %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
cleanup() { kctl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -f "$KUBECONFIG_FILE" ] || die "no cluster ($KUBECONFIG_FILE missing): run scripts/cluster/up.sh"
kctl get --raw /readyz >/dev/null 2>&1 || die "the apiserver at $APISERVER_URL does not answer: run scripts/cluster/up.sh"

# 1. node Ready
if [ "$(kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; then
  ok "node $NODE_NAME Ready ($(kctl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}'))"
else
  bad "node $NODE_NAME not Ready"
fi

# 2. Deployment + Service
kctl create namespace "$NS" >/dev/null
kctl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: $PROBE_IMAGE
          imagePullPolicy: Never
          args: ["serve", ":8080"]
          ports: [{containerPort: 8080, name: http}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {memory: 64Mi}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
EOF
if kctl -n "$NS" rollout status deploy/hello --timeout=120s >/dev/null; then
  ok "deployment hello Ready ($(kctl -n "$NS" get deploy hello -o jsonpath='{.status.readyReplicas}') replicas)"
else
  bad "deployment hello not Ready"
  kctl -n "$NS" describe pods | tail -n 20
fi

# 3. ClusterIP from the host
svc_ip=$(kctl -n "$NS" get svc hello -o jsonpath='{.spec.clusterIP}')
body=""
for _ in $(seq 1 20); do
  body=$(curl -fsS --max-time 3 "http://$svc_ip/" 2>/dev/null) && break
  sleep 1
done
if [[ $body == "hello from hello-"* ]]; then ok "host -> ClusterIP $svc_ip:80 answered: $body"; else bad "host -> ClusterIP $svc_ip:80: no answer"; fi

# 4. from another pod, by DNS name
url=http://hello.$NS.svc.$CLUSTER_DOMAIN/
kctl -n "$NS" run client --image="$PROBE_IMAGE" --image-pull-policy=Never --restart=Never \
  --command -- /probe get "$url" 10 >/dev/null
phase=""
for _ in $(seq 1 60); do
  phase=$(kctl -n "$NS" get pod client -o jsonpath='{.status.phase}')
  [ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
  sleep 1
done
out=$(kctl -n "$NS" logs client 2>&1 || true)
if [ "$phase" = Succeeded ] && [[ $out == "hello from hello-"* ]]; then
  ok "pod -> $url answered: $out"
else
  bad "pod -> $url (phase ${phase:-?}): $out"
fi

# 5. kubectl top node (metrics-server through the aggregation layer)
top=""
for _ in $(seq 1 60); do
  top=$(kctl top node "$NODE_NAME" --no-headers 2>/dev/null) && [ -n "$top" ] && break
  sleep 2
done
if [ -n "$top" ]; then ok "kubectl top node: $top"; else bad "kubectl top node: $(kctl top node 2>&1 | tail -1)"; fi

echo "smoke: $passed passed, $failed failed ($(($(date +%s) - T0)) s)"
[ "$failed" -eq 0 ]
