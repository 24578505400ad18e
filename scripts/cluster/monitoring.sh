#!/usr/bin/env bash
# Fourth stage: kube-prometheus-stack as terraform installs it on EKS - the same chart version and
# helm/platform/kube-prometheus-stack.yaml - plus monitoring/values-local.yaml (images built here,
# requests for one node, no Grafana or kube-state-metrics). Then proves: the operator, Prometheus
# and Alertmanager run, Prometheus answers from the host and has loaded the chart's rules.
# Usage: monitoring.sh [install|uninstall]
#   KPS_CHART  the packaged chart (default: ../shared/charts/kube-prometheus-stack-<version>.tgz)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

KPS_CHART=${KPS_CHART:-$REPO_ROOT/../shared/charts/kube-prometheus-stack-$KPS_CHART_VERSION.tgz}
MON_NS=monitoring
RELEASE=kube-prometheus-stack # the name terraform gives it; resource names derive from it
MPKI=$PKI_DIR/monitoring
action=${1:-install}
T0=$(date +%s)
trap 'exit 130' INT TERM

kctl get --raw /readyz >/dev/null 2>&1 || die "the cluster is not up: run scripts/cluster/up.sh first"

if [ "$action" = uninstall ]; then
  khelm uninstall "$RELEASE" -n "$MON_NS" --wait --timeout 120s >/dev/null 2>&1 || true
  log "kube-prometheus-stack removed (its CRDs stay, as helm keeps them)"
  exit 0
fi
[ "$action" = install ] || die "usage: $0 [install|uninstall]"
[ -f "$KPS_CHART" ] || die "chart not found: $KPS_CHART (set KPS_CHART)"

bash "$CLUSTER_DIR/build.sh" --with-monitoring
log "loading images: ${MONITORING_IMAGES[*]}"
bash "$CLUSTER_DIR/load-image.sh" "${MONITORING_IMAGES[@]}"

# The operator's admission webhook certificate, which the chart's kube-webhook-certgen Jobs make
# upstream (that image is not built here): the Secret they would write, its CA as caBundle.
webhook_svc=$RELEASE-operator
mkdir -p "$MPKI" && chmod 700 "$MPKI"
(
  cd "$MPKI"
  umask 077
  tls_ca ca symptomdx-monitoring-webhook-ca
  tls_cert tls ca "/CN=$webhook_svc.$MON_NS.svc" serverAuth \
    "DNS:$webhook_svc,DNS:$webhook_svc.$MON_NS,DNS:$webhook_svc.$MON_NS.svc,DNS:$webhook_svc.$MON_NS.svc.$CLUSTER_DOMAIN"
)
kctl_namespace "$MON_NS"
kctl -n "$MON_NS" create secret generic "$RELEASE-admission" --from-file=ca="$MPKI/ca.crt" \
  --from-file=cert="$MPKI/tls.crt" --from-file=key="$MPKI/tls.key" --dry-run=client -o yaml | kctl apply -f - >/dev/null

log "helm upgrade --install $RELEASE $(basename "$KPS_CHART") (platform values + local values)"
khelm upgrade --install "$RELEASE" "$KPS_CHART" -n "$MON_NS" \
  -f "$REPO_ROOT/helm/platform/kube-prometheus-stack.yaml" -f "$CLUSTER_DIR/monitoring/values-local.yaml" \
  --set prometheusOperator.admissionWebhooks.caBundle="$(base64 -w0 "$MPKI/ca.crt")" \
  --wait --timeout 600s >"$STATE_DIR/logs/monitoring-helm.log" 2>&1 ||
  { cat "$STATE_DIR/logs/monitoring-helm.log" >&2; die "helm install of $RELEASE failed"; }

# --- prove it ------------------------------------------------------------------------------------
fails=0
check() { # DESCRIPTION CMD...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then echo "PASS $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
# The operator makes these StatefulSets from the chart's Prometheus and Alertmanager resources,
# some time after helm returns: wait for each to exist, then for its rollout.
rolled_out() { # STATEFULSET TIMEOUT_SECONDS
  wait_for 120 "statefulset $1" kctl -n "$MON_NS" get "statefulset/$1" &&
    kctl -n "$MON_NS" rollout status "statefulset/$1" --timeout="$2s"
}
check "Prometheus ready (made by the operator)" rolled_out "prometheus-$RELEASE-prometheus" 300
check "Alertmanager ready (made by the operator)" \
  rolled_out "alertmanager-$RELEASE-alertmanager" 180
prom=$(kctl -n "$MON_NS" get svc "$RELEASE-prometheus" -o jsonpath='{.spec.clusterIP}')
check "Prometheus answers at http://$prom:9090" curl -fsS --max-time 5 "http://$prom:9090/-/ready"
rules_loaded() { curl -fsS --max-time 5 "http://$prom:9090/api/v1/rules" | grep -q '"name":"kubernetes-apps"'; }
check "Prometheus has loaded the chart's PrometheusRules" wait_for 120 rules rules_loaded

log "monitoring.sh done in $(($(date +%s) - T0)) s"
cat <<EOF

kube-prometheus-stack $KPS_CHART_VERSION is installed in namespace $MON_NS.
  Prometheus:   http://$prom:9090 (from the host)
  Alertmanager: http://$(kctl -n "$MON_NS" get svc "$RELEASE-alertmanager" -o jsonpath='{.spec.clusterIP}'):9093
EOF
[ "$fails" -eq 0 ] || die "$fails check(s) failed"
