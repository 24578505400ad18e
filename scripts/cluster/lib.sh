# shellcheck shell=bash disable=SC2034
# Shared settings of the single-node cluster scripts (sourced, never run).
# Everything that names an address, a path or a version lives here.

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)

# --- versions (the wrapper modules under go/ pin the same ones in their go.mod) ---
K8S_VERSION=v1.34.4
K8S_BUILD_DATE=2026-02-10T12:53:36Z # the v1.34.4 tag's time on the module proxy
ETCD_VERSION=v3.6.16
COREDNS_VERSION=v1.12.4
METRICS_SERVER_VERSION=v0.8.0
CRICTL_VERSION=v1.34.0
PAUSE_VERSION=3.10.1 # build/pause/linux/pause.c of the k8s.io/kubernetes module
# second stage (kserve.sh)
CERT_MANAGER_VERSION=v1.18.2 # KServe's chart needs it (webhook certificates), as on EKS
KSERVE_VERSION=v0.16.0
KUBE_RBAC_PROXY_VERSION=v0.18.0 # the sidecar of KServe's chart (kserve.controller.rbacProxyImage)
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # the module proxy's latest (a pseudo-version)
# third stage (build.sh --with-kfp): Kubeflow Pipelines backend and the Argo Workflows it runs on
KFP_VERSION=2.14.3
KFP_MODULE_VERSION=v0.0.0-20250902140602-fc3214d4b4d3 # = tag 2.14.3 (KFP tags are not semver)
KFP_COMMIT=fc3214d4b4d395cb2d5de940d3dbd7ebc295c330
# what the 2.14.3 go.mod requires (upstream replaces both with its own folders, not in the module
# zip): build.sh copies these and regenerates their pipelinespec/kubernetesplatform Go code
KFP_API_MODULE_VERSION=v0.0.0-20250102152816-873e9dedd766
KFP_PLATFORM_MODULE_VERSION=v0.0.0-20240725205754-d911c8b73b49
PROTOC_GEN_GO_VERSION=v1.36.6 # as upstream's backend/api/Dockerfile (PROTOBUF_GO)
ARGO_VERSION=v3.6.7 # the Argo Workflows KFP 2.14.3 is built and tested against
ARGO_COMMIT=8d7dae690e152d19fb40f7affbb68fb783b32172
ARGO_BUILD_DATE=2025-04-29T13:39:25Z # the v3.6.7 tag's time on the module proxy
# monitoring (build.sh --with-monitoring): what kube-prometheus-stack's chart runs, at the chart's own
# image versions (its Chart.yaml appVersion and values.yaml); the chart itself is ../shared/charts'
KPS_CHART_VERSION=78.5.0
PROMETHEUS_OPERATOR_VERSION=v0.86.1
PROMETHEUS_VERSION=v3.7.2 # Go module github.com/prometheus/prometheus v0.307.2 (v3.x.y = v0.3xx.y)
ALERTMANAGER_VERSION=v0.28.1
NODE_EXPORTER_VERSION=v1.9.1
# NetworkPolicy enforcement (build.sh --with-netpol, netpol.sh)
KNP_VERSION=v0.8.0 # sigs.k8s.io/kube-network-policies

# --- where things go (all git-ignored) ---
# Binaries, stamps and Go caches live in the user's cache folder, outside the work tree, so a
# kept machine and a fresh clone (CI) share them instead of rebuilding for 30 minutes;
# CLUSTER_TOOLS_DIR moves them (e.g. an empty folder to measure a cold build).
TOOLS_DIR=${CLUSTER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/symptom-dx}
BIN_DIR=$TOOLS_DIR/cluster/bin
STAMP_DIR=$TOOLS_DIR/cluster/stamps
STATE_DIR=${CLUSTER_STATE_DIR:-$REPO_ROOT/.state/cluster}
PKI_DIR=$STATE_DIR/pki
LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run # pid files
KUBECONFIG_FILE=$STATE_DIR/kubeconfig
CTRD_DIR=$STATE_DIR/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock

export GOMODCACHE=$TOOLS_DIR/go/mod
export GOCACHE=$TOOLS_DIR/go/cache
export GOFLAGS=-modcacherw
export GOTOOLCHAIN=local
# Modules come from `go env GOPROXY`, as the machine sets it: no proxy is named here.
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin

# --- network (see README.md: the whole node lives in its own network namespace) ---
NETNS=symptomdx-node
NETNS_PATH=/run/netns/$NETNS
HOST_VETH=sdx-host     # host end of the veth pair
NODE_VETH=eth0         # node end, inside $NETNS
HOST_IP=10.231.0.1     # /30 on the host end
NODE_IP=10.231.0.2     # /30 on the node end: node IP, apiserver advertise address
LINK_CIDR=10.231.0.0/30
POD_CIDR=10.232.0.0/24 # one node, one /24; the CNI bridge gateway is .1
POD_GW=10.232.0.1
SVC_CIDR=10.233.0.0/24
KUBERNETES_SVC_IP=10.233.0.1
DNS_SVC_IP=10.233.0.10
CLUSTER_DOMAIN=cluster.local
NODE_NAME=symptomdx-node
APISERVER_URL=https://$NODE_IP:6443

# --- images (built locally by build.sh; nothing is ever pulled) ---
IMG_PREFIX=localhost/symptomdx
PAUSE_IMAGE=$IMG_PREFIX/pause:$PAUSE_VERSION
COREDNS_IMAGE=$IMG_PREFIX/coredns:$COREDNS_VERSION
METRICS_SERVER_IMAGE=$IMG_PREFIX/metrics-server:$METRICS_SERVER_VERSION
PROBE_IMAGE=$IMG_PREFIX/probe:dev
CLUSTER_IMAGES=("$PAUSE_IMAGE" "$COREDNS_IMAGE" "$METRICS_SERVER_IMAGE" "$PROBE_IMAGE")
KSERVE_CONTROLLER_IMAGE=$IMG_PREFIX/kserve-controller:$KSERVE_VERSION
CERT_MANAGER_IMAGES=("$IMG_PREFIX/cert-manager-controller:$CERT_MANAGER_VERSION"
  "$IMG_PREFIX/cert-manager-webhook:$CERT_MANAGER_VERSION" "$IMG_PREFIX/cert-manager-cainjector:$CERT_MANAGER_VERSION"
  "$IMG_PREFIX/cert-manager-startupapicheck:$CERT_MANAGER_VERSION")
KUBE_RBAC_PROXY_IMAGE=$IMG_PREFIX/kube-rbac-proxy:$KUBE_RBAC_PROXY_VERSION
MINIO_IMAGE=$IMG_PREFIX/minio:${MINIO_VERSION##*-}
KFP_API_SERVER_IMAGE=$IMG_PREFIX/kfp-api-server:$KFP_VERSION
KFP_PERSISTENCEAGENT_IMAGE=$IMG_PREFIX/kfp-persistenceagent:$KFP_VERSION
KFP_SCHEDULEDWORKFLOW_IMAGE=$IMG_PREFIX/kfp-scheduledworkflow:$KFP_VERSION
KFP_DRIVER_IMAGE=$IMG_PREFIX/kfp-driver:$KFP_VERSION
KFP_LAUNCHER_IMAGE=$IMG_PREFIX/kfp-launcher:$KFP_VERSION
ARGO_CONTROLLER_IMAGE=$IMG_PREFIX/argo-workflow-controller:$ARGO_VERSION
ARGOEXEC_IMAGE=$IMG_PREFIX/argoexec:$ARGO_VERSION
KNP_IMAGE=$IMG_PREFIX/kube-network-policies:$KNP_VERSION
PROMETHEUS_OPERATOR_IMAGE=$IMG_PREFIX/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION
PROMETHEUS_CONFIG_RELOADER_IMAGE=$IMG_PREFIX/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION
PROMETHEUS_IMAGE=$IMG_PREFIX/prometheus:$PROMETHEUS_VERSION
ALERTMANAGER_IMAGE=$IMG_PREFIX/alertmanager:$ALERTMANAGER_VERSION
NODE_EXPORTER_IMAGE=$IMG_PREFIX/node-exporter:$NODE_EXPORTER_VERSION
MONITORING_IMAGES=("$PROMETHEUS_OPERATOR_IMAGE" "$PROMETHEUS_CONFIG_RELOADER_IMAGE" "$PROMETHEUS_IMAGE"
  "$ALERTMANAGER_IMAGE" "$NODE_EXPORTER_IMAGE")
KFP_IMAGES=("$KFP_API_SERVER_IMAGE" "$KFP_PERSISTENCEAGENT_IMAGE" "$KFP_SCHEDULEDWORKFLOW_IMAGE"
  "$KFP_DRIVER_IMAGE" "$KFP_LAUNCHER_IMAGE" "$ARGO_CONTROLLER_IMAGE" "$ARGOEXEC_IMAGE")

# Daemons in start order; down.sh stops them in reverse.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, mounts, cgroups)"; }

# innode CMD...: run CMD inside the node's network namespace only (same mount namespace as the
# host, unlike `ip netns exec`, so mounts made by kubelet/containerd are visible to each other).
innode() { nsenter --net="$NETNS_PATH" -- "$@"; }

kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
# khelm: helm (scripts/k8s-tools.sh) against this cluster, its plugins and caches in the cluster's
# state, not the user's
khelm() {
  [ -n "${HELM_BIN:-}" ] || HELM_BIN=$(bash "$REPO_ROOT/scripts/k8s-tools.sh")/helm
  HELM_DATA_HOME=$STATE_DIR/helm/data HELM_CONFIG_HOME=$STATE_DIR/helm/config HELM_CACHE_HOME=$STATE_DIR/helm/cache \
    "$HELM_BIN" --kubeconfig "$KUBECONFIG_FILE" "$@"
}
kctl_namespace() { kctl create namespace "$1" --dry-run=client -o yaml | kctl apply -f - >/dev/null; }

pid_alive() { # NAME -> 0 if its pid file names a live process of this cluster (not a reused pid)
  local f=$RUN_DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR"
}

# netns_pids: pids of all processes in the node's network namespace
netns_pids() {
  local ino d ns
  ino=$(stat -L -c %i "$NETNS_PATH" 2>/dev/null) || return 0
  for d in /proc/[0-9]*; do
    ns=$(readlink "$d/ns/net" 2>/dev/null) || continue
    [ "$ns" = "net:[$ino]" ] && echo "${d#/proc/}"
  done
  return 0
}

# --- certificates: the project's one helper (pipelines/local_stack/pki.py), in the venv ---
# Callers cd into their folder; what exists is kept.
PROJECT_PY=$REPO_ROOT/.venv/bin/python

pki() { # pki ARGS...: the helper in the project's venv
  [ -x "$PROJECT_PY" ] || die "no $PROJECT_PY: make venv first"
  "$PROJECT_PY" -m pipelines.local_stack.pki "$@"
}
# tls_ca NAME CN: a self-signed CA NAME.crt/NAME.key in the current folder
tls_ca() { pki ca "$1" "$2"; }
# tls_cert NAME CA SUBJECT USAGE [SANS]: NAME.key + NAME.crt signed by CA, in the current folder;
# USAGE is clientAuth, serverAuth or both, SANS "DNS:name,IP:address"
tls_cert() { pki cert "$@"; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD once a second until it succeeds.
wait_for() {
  local timeout=$1 i # $2 describes what is awaited, for the reader
  shift 2
  for ((i = 0; i < timeout; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}
