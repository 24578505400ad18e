#!/usr/bin/env bash
# Brings up a real single-node Kubernetes (v1.34.4) on this machine, inside its own network
# namespace: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet,
# kube-proxy as processes; CoreDNS and metrics-server as pods. Idempotent: when the cluster is
# already up it says so and exits 0. On failure or Ctrl+C it tears down what it started
# (logs are kept; KEEP_ON_FAIL=1 leaves everything running for inspection).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

T0=$(date +%s)
print_exports() {
  cat <<EOF

Cluster is up. To use it from this shell:
  export KUBECONFIG=$KUBECONFIG_FILE
  export PATH=$BIN_DIR:\$PATH
  kubectl get nodes
Pod CIDR $POD_CIDR and service CIDR $SVC_CIDR are routed from the host via $HOST_VETH.
Logs: $LOG_DIR/   Stop: bash scripts/cluster/down.sh
EOF
}

cluster_healthy() {
  local d
  for d in "${DAEMONS[@]}"; do pid_alive "$d" || return 1; done
  kctl get --raw /readyz >/dev/null 2>&1
}

if cluster_healthy; then
  log "cluster already running (all ${#DAEMONS[@]} daemons alive, apiserver ready)"
  print_exports
  exit 0
fi
for d in "${DAEMONS[@]}"; do
  if pid_alive "$d"; then log "note: $d is already running from a previous up.sh; keeping it"; fi
done

# ---------------------------------------------------------------------------------------------
on_fail() {
  local rc=$?
  trap - ERR INT TERM EXIT
  if [ "$rc" -ne 0 ]; then
    echo "up.sh: failed (exit $rc). Daemon logs: $LOG_DIR/" >&2
    if [ "${KEEP_ON_FAIL:-0}" = 1 ]; then
      echo "up.sh: KEEP_ON_FAIL=1: leaving the partial cluster running (down.sh stops it)" >&2
    else
      echo "up.sh: tearing down what was started (logs kept)..." >&2
      KEEP_STATE=1 bash "$CLUSTER_DIR/down.sh" >&2 || true
    fi
  fi
  exit "$rc"
}
trap on_fail EXIT
trap 'exit 130' INT TERM

# --- prerequisites -----------------------------------------------------------------------------
bash "$REPO_ROOT/scripts/apt-deps.sh" containerd runc containernetworking-plugins iproute2 \
  iptables conntrack socat openssl util-linux curl
bash "$CLUSTER_DIR/build.sh"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl crictl; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b missing after build.sh"
done
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup filesystem under /sys/fs/cgroup"

mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR" "$CTRD_DIR" "$STATE_DIR/cni/net.d" "$STATE_DIR/cni/ipam" \
  "$STATE_DIR/etcd" "$STATE_DIR/kubelet" "$STATE_DIR/pod-logs" "$STATE_DIR/manifests"
chmod 700 "$STATE_DIR/etcd"

log "PKI and kubeconfigs"
bash "$CLUSTER_DIR/pki.sh"

# --- leftovers of an earlier run (e.g. its processes were killed without down.sh) --------------
any_alive=0
for d in "${DAEMONS[@]}"; do pid_alive "$d" && any_alive=1; done
if [ -e "$NETNS_PATH" ]; then
  for pid in $(netns_pids); do
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR" &&
      ! grep -q kubepods "/proc/$pid/cgroup" 2>/dev/null; then
      die "netns $NETNS is used by a process of another cluster (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-100)); stop it with its own down.sh"
    fi
  done
fi
if [ "$any_alive" = 0 ] && { [ -e "$NETNS_PATH" ] || ip link show "$HOST_VETH" >/dev/null 2>&1 ||
  grep -qF " $STATE_DIR/" /proc/self/mountinfo; }; then
  log "no daemon alive, but an earlier run left its netns/mounts: cleaning up first (state kept)"
  KEEP_STATE=1 bash "$CLUSTER_DIR/down.sh"
fi

# --- network namespace, veth, routes ------------------------------------------------------------
log "network: netns $NETNS, veth $HOST_VETH ($HOST_IP) <-> $NODE_VETH ($NODE_IP)"
if [ ! -e "$NETNS_PATH" ]; then ip netns add "$NETNS"; fi
ip -n "$NETNS" link set lo up
if ! ip link show "$HOST_VETH" >/dev/null 2>&1; then
  ip link add "$HOST_VETH" type veth peer name "$NODE_VETH" netns "$NETNS"
fi
ip addr replace "$HOST_IP/30" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
ip -n "$NETNS" addr replace "$NODE_IP/30" dev "$NODE_VETH"
ip -n "$NETNS" link set "$NODE_VETH" up
# The host reaches pods and ClusterIPs through the node. The node gets NO default route: nothing
# in the cluster can reach any address outside the namespaces these scripts made.
ip route replace "$POD_CIDR" via "$NODE_IP" dev "$HOST_VETH"
ip route replace "$SVC_CIDR" via "$NODE_IP" dev "$HOST_VETH"
innode sysctl -qw net.ipv4.ip_forward=1
innode sysctl -qw net.bridge.bridge-nf-call-iptables=1 || log "warning: bridge-nf-call-iptables not settable"
innode sysctl -qw net.bridge.bridge-nf-call-ip6tables=1 || true

# --- daemon launcher ---------------------------------------------------------------------------
# start_daemon NAME CMD...: runs CMD in the node netns, detached (own session, survives this
# script), stdout/stderr to logs/NAME.log, pid in run/NAME.pid (the pid IS the daemon's).
start_daemon() {
  local name=$1
  shift
  if pid_alive "$name"; then return 0; fi
  log "starting $name"
  setsid bash -c 'echo $$ >"$0"; exec nsenter --net="$1" -- "${@:2}"' \
    "$RUN_DIR/$name.pid" "$NETNS_PATH" "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  sleep 0.2
  pid_alive "$name" || die "$name exited at once; see $LOG_DIR/$name.log"
}
# require_alive NAME...: fail fast (with the log's tail) when a daemon has died
require_alive() {
  local d
  for d in "$@"; do
    pid_alive "$d" || { tail -n 25 "$LOG_DIR/$d.log" >&2; die "$d died; see $LOG_DIR/$d.log"; }
  done
}
# wait_daemon SECONDS NAME DESCRIPTION CMD...: wait for CMD while NAME stays alive
wait_daemon() {
  local timeout=$1 name=$2 what=$3 i
  shift 3
  for ((i = 0; i < timeout; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    require_alive "$name"
    sleep 1
  done
  tail -n 25 "$LOG_DIR/$name.log" >&2
  die "timed out after ${timeout}s waiting for $what"
}

P=$PKI_DIR
# --- etcd --------------------------------------------------------------------------------------
start_daemon etcd "$BIN_DIR/etcd" --name "$NODE_NAME" --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
  --log-level warn
wait_daemon 60 etcd "etcd health" innode curl -fsS http://127.0.0.1:2381/health

# --- kube-apiserver ----------------------------------------------------------------------------
start_daemon kube-apiserver "$BIN_DIR/kube-apiserver" \
  --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:2379 \
  --service-cluster-ip-range="$SVC_CIDR" --service-node-port-range=30000-32767 \
  --allow-privileged=true --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,PodSecurity \
  --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --enable-aggregator-routing=true --profiling=false --v=1
wait_daemon 120 kube-apiserver "kube-apiserver /readyz" kctl get --raw /readyz

# --- controller-manager, scheduler -------------------------------------------------------------
start_daemon kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --client-ca-file="$P/ca.crt" --requestheader-client-ca-file="$P/front-proxy-ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
  --use-service-account-credentials=true --controllers='*,bootstrapsigner,tokencleaner' \
  --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SVC_CIDR" --profiling=false --v=1
start_daemon kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1

# --- containerd (its own instance: own config, root, state and socket) -------------------------
cat >"$STATE_DIR/cni/net.d/10-symptomdx.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "symptomdx",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat >"$CTRD_DIR/config.toml" <<EOF
# containerd for the symptomdx cluster only (Docker's containerd is a different instance).
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj:
  # clamp the containers' values to containerd's own instead of failing every sandbox.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
EOF
start_daemon containerd env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  containerd --config "$CTRD_DIR/config.toml" --log-level warn
wait_daemon 30 containerd "containerd socket" ctr --address "$CTRD_SOCK" version

log "importing images into containerd (k8s.io): ${CLUSTER_IMAGES[*]}"
bash "$CLUSTER_DIR/load-image.sh" "${CLUSTER_IMAGES[@]}"

# --- kubelet -----------------------------------------------------------------------------------
echo "nameserver $DNS_SVC_IP" >"$STATE_DIR/resolv.conf"
cat >"$STATE_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false          # this machine has cgroup v1
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: 0.0.0.0             # inside the node netns only
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $P/kubelet-serving.crt
tlsPrivateKeyFile: $P/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization:
  mode: Webhook
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SVC_IP]
resolvConf: $STATE_DIR/resolv.conf
podLogsDir: $STATE_DIR/pod-logs
failSwapOn: false
oomScoreAdj: 0               # no CAP_SYS_RESOURCE here: a negative value cannot be set
# Images cannot be pulled again here: never garbage-collect them for disk pressure.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  imagefs.available: 2%
  nodefs.inodesFree: 2%
serializeImagePulls: false
maxPods: 110
EOF
start_daemon kubelet "$BIN_DIR/kubelet" --config="$STATE_DIR/kubelet-config.yaml" \
  --kubeconfig="$STATE_DIR/kubelet.kubeconfig" --root-dir="$STATE_DIR/kubelet" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1

# --- kube-proxy (iptables mode; edits iptables inside the node netns only) ---------------------
cat >"$STATE_DIR/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $STATE_DIR/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
nodePortAddresses: [primary] # NodePorts on the node IP only
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0              # leave the (global) conntrack table size alone
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
start_daemon kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE_DIR/kube-proxy-config.yaml" --v=1

node_ready() { # the kubelet answers AND the node object says Ready (not a stale status from etcd)
  innode curl -fsS http://127.0.0.1:10248/healthz >/dev/null 2>&1 || return 1
  [ "$(kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
log "waiting for node $NODE_NAME to be Ready"
wait_daemon 120 kubelet "node Ready" node_ready
require_alive "${DAEMONS[@]}"

# --- addons: CoreDNS, metrics-server ------------------------------------------------------------
log "applying CoreDNS"
sed -e "s|\${COREDNS_IMAGE}|$COREDNS_IMAGE|g" -e "s|\${DNS_SVC_IP}|$DNS_SVC_IP|g" \
  -e "s|\${CLUSTER_DOMAIN}|$CLUSTER_DOMAIN|g" "$CLUSTER_DIR/addons/coredns.yaml" >"$STATE_DIR/manifests/coredns.yaml"
kctl apply -f "$STATE_DIR/manifests/coredns.yaml" >/dev/null

log "applying metrics-server (rendered from sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION manifests/base)"
ms_src=$GOMODCACHE/sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION/manifests/base
[ -d "$ms_src" ] || (cd "$CLUSTER_DIR/go/metrics-server" && go mod download sigs.k8s.io/metrics-server)
ms_work=$STATE_DIR/manifests/metrics-server
rm -rf "$ms_work" && mkdir -p "$ms_work"
cp -r "$ms_src" "$ms_work/base" && chmod -R u+w "$ms_work"
cp "$CLUSTER_DIR/addons/metrics-server/kustomization.yaml" "$ms_work/"
kctl kustomize "$ms_work" >"$STATE_DIR/manifests/metrics-server.yaml" 2>"$ms_work/kustomize.err" ||
  { cat "$ms_work/kustomize.err" >&2; die "kubectl kustomize of the metrics-server manifests failed"; }
grep -q "image: $METRICS_SERVER_IMAGE\$" "$STATE_DIR/manifests/metrics-server.yaml" ||
  die "rendered metrics-server manifest does not use $METRICS_SERVER_IMAGE"
kctl apply -f "$STATE_DIR/manifests/metrics-server.yaml" >/dev/null

log "waiting for CoreDNS and metrics-server to roll out"
kctl -n kube-system rollout status deploy/coredns --timeout=180s >/dev/null ||
  die "CoreDNS did not become ready: kubectl -n kube-system describe pod -l k8s-app=kube-dns"

log "checking DNS from a pod (kubernetes.default)"
dns_done() {
  local ph
  ph=$(kctl get pod cluster-dnscheck -o jsonpath='{.status.phase}' 2>/dev/null)
  [ "$ph" = Succeeded ] || [ "$ph" = Failed ]
}
# Up to three pods: right after CoreDNS rolls out, the first query can still time out while
# kube-proxy programs the DNS Service on a busy machine; a broken DNS fails all three.
for attempt in 1 2 3; do
  kctl delete pod cluster-dnscheck --ignore-not-found --wait=true >/dev/null
  kctl run cluster-dnscheck --image="$PROBE_IMAGE" --image-pull-policy=Never --restart=Never \
    --command -- /probe lookup kubernetes.default "kubernetes.default.svc.$CLUSTER_DOMAIN" >/dev/null
  wait_for 90 "DNS check pod" dns_done || true
  phase=$(kctl get pod cluster-dnscheck -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [ "$phase" = Succeeded ] && break
  log "DNS check $attempt/3: ${phase:-unknown}"
  kctl logs cluster-dnscheck 2>/dev/null | sed 's/^/  /' >&2 || true
  sleep 3
done
kctl delete pod cluster-dnscheck --ignore-not-found --wait=false >/dev/null
[ "$phase" = Succeeded ] || die "DNS check pod did not resolve kubernetes.default (phase: ${phase:-unknown})"

kctl -n kube-system rollout status deploy/metrics-server --timeout=180s >/dev/null ||
  die "metrics-server did not become ready: kubectl -n kube-system logs deploy/metrics-server"
apiservice_available() {
  [ "$(kctl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')" = True ]
}
wait_for 120 "metrics APIService" apiservice_available ||
  die "APIService v1beta1.metrics.k8s.io not Available: kubectl get apiservice v1beta1.metrics.k8s.io -o yaml"
require_alive "${DAEMONS[@]}"

trap - EXIT
log "cluster up in $(($(date +%s) - T0)) s"
print_exports
