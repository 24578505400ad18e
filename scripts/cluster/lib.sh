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
KSERVE_VERSION=v0.16.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # the module proxy's latest (a pseudo-version)

# --- where things go (all git-ignored) ---
# CLUSTER_TOOLS_DIR: binaries + Go caches elsewhere, e.g. a folder kept outside the checkout so
# that a fresh clone (CI) does not rebuild for 30 minutes; also used to measure a cold build.
TOOLS_DIR=${CLUSTER_TOOLS_DIR:-$REPO_ROOT/.tools}
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
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
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
MINIO_IMAGE=$IMG_PREFIX/minio:${MINIO_VERSION##*-}

# Daemons in start order; down.sh stops them in reverse.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, mounts, cgroups)"; }

# innode CMD...: run CMD inside the node's network namespace only (same mount namespace as the
# host, unlike `ip netns exec`, so mounts made by kubelet/containerd are visible to each other).
innode() { nsenter --net="$NETNS_PATH" -- "$@"; }

kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

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
