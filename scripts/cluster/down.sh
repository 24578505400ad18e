#!/usr/bin/env bash
# Stops the single-node cluster and removes every trace of it from the machine: daemons,
# containerd shims and pod processes, the mounts it made (pod volumes, overlay rootfs, shm,
# network-namespace bind mounts), the node's and the pods' network namespaces, the host-side
# veth and its routes, the kubelet's cgroups. Then verifies that nothing is left.
# Keeps the build caches (.tools); removes .state/cluster unless KEEP_STATE=1 (logs, PKI, etcd).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
T0=$(date +%s)
trap 'echo "down.sh: interrupted; run it again to finish the teardown" >&2; exit 130' INT TERM

# stop_daemon NAME [GRACE]: SIGTERM, wait up to GRACE seconds, then SIGKILL
stop_daemon() {
  local name=$1 grace=${2:-15} f=$RUN_DIR/$1.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if pid_alive "$name"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$f"
}

# 1. Stop the node agents first so nothing restarts pods, then remove the pods through the CRI
#    (CNI DEL releases pod addresses and veths), then containerd and the control plane.
stop_daemon kube-proxy
stop_daemon kubelet
stop_daemon kube-scheduler
stop_daemon kube-controller-manager
if pid_alive containerd && [ -S "$CTRD_SOCK" ]; then
  log "removing pods through the CRI"
  timeout 90 "$BIN_DIR/crictl" --runtime-endpoint "unix://$CTRD_SOCK" --timeout 30s rmp --all --force >/dev/null 2>&1 ||
    log "warning: crictl rmp did not finish cleanly; leftovers are killed below"
fi
stop_daemon containerd 20
stop_daemon kube-apiserver
stop_daemon etcd

# 2. Whatever is left that belongs to the cluster: processes in the node netns or a pod netns,
#    processes in the kubelet's cgroups, and anything whose command line names the cluster's
#    containerd socket (its shims). Never this script or its parents.
ns_inodes() {
  {
    [ -e "$NETNS_PATH" ] && stat -L -c %i "$NETNS_PATH" 2>/dev/null
    awk -v d="$STATE_DIR/" '$5 ~ "^"d && $9 == "nsfs" {print $5}' /proc/self/mountinfo |
      while read -r m; do stat -L -c %i "$m" 2>/dev/null; done
  } | sort -u
}
self_chain() {
  local p=$$
  while [ "$p" -gt 1 ]; do echo "$p"; p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 1); done
}
cluster_pids() {
  local inodes self pid ns d
  inodes=" $(ns_inodes | tr '\n' ' ') "
  self=" $(self_chain | tr '\n' ' ') "
  {
    for d in /proc/[0-9]*; do
      pid=${d#/proc/}
      ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || continue
      ns=${ns#net:[}
      ns=${ns%]}
      if [[ $inodes == *" $ns "* ]]; then echo "$pid"; continue; fi
      if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CTRD_SOCK"; then echo "$pid"; fi
    done
    cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
      /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs 2>/dev/null
  } | sort -un | while read -r pid; do [[ $self == *" $pid "* ]] || echo "$pid"; done || true
}
for round in 1 2 3 4 5 6 7 8 9 10; do
  pids=$(cluster_pids)
  [ -z "$pids" ] && break
  [ "$round" = 1 ] && log "killing leftover processes: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
done

# 3. Unmount everything under the state dir, deepest first (pod volumes, overlay rootfs, shm,
#    the pods' netns bind mounts, the kubelet's own bind mount of its root dir).
mounts_left() {
  awk -v d="$STATE_DIR/" '$5 ~ "^"d {print $5}' /proc/self/mountinfo |
    awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}
for round in 1 2 3; do
  m=$(mounts_left)
  [ -z "$m" ] && break
  [ "$round" = 1 ] && log "unmounting $(echo "$m" | wc -l) mounts"
  while read -r mp; do
    [ -n "$mp" ] || continue
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
  done <<<"$m"
done

# 4. Network: the node netns (with cni0, the pod veths and the iptables rules inside it), the
#    host end of the veth and the routes through it.
if ip netns list | grep -qw "$NETNS"; then log "deleting netns $NETNS"; ip netns delete "$NETNS" 2>/dev/null || true; fi
if grep -q " $NETNS_PATH " /proc/self/mountinfo; then umount "$NETNS_PATH" 2>/dev/null || umount -l "$NETNS_PATH"; fi
rm -f "$NETNS_PATH"
# `ip netns add` made /run/netns a (shared) bind mount of itself; undo that when no netns is left
while grep -q " /run/netns " /proc/self/mountinfo && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; do
  umount /run/netns 2>/dev/null || break
done
ip route del "$POD_CIDR" via "$NODE_IP" 2>/dev/null || true
ip route del "$SVC_CIDR" via "$NODE_IP" 2>/dev/null || true
ip link del "$HOST_VETH" 2>/dev/null || true

# 5. The kubelet's cgroups (cgroupfs driver): /sys/fs/cgroup/<controller>/kubepods/...
for top in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$top" ] || continue
  find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# 6. State.
if [ "${KEEP_STATE:-0}" != 1 ] && [ -d "$STATE_DIR" ]; then
  if [ -n "$(mounts_left)" ]; then
    log "warning: mounts remain under $STATE_DIR; not deleting it"
  else
    log "removing $STATE_DIR (KEEP_STATE=1 keeps it)"
    rm -rf --one-file-system "$STATE_DIR"
  fi
fi

# 7. Verify.
problems=()
[ -z "$(cluster_pids)" ] || problems+=("processes: $(cluster_pids | tr '\n' ' ')")
[ -z "$(mounts_left)" ] || problems+=("mounts: $(mounts_left | tr '\n' ' ')")
! ip netns list 2>/dev/null | grep -qw "$NETNS" || problems+=("netns $NETNS")
! grep -q " $NETNS_PATH " /proc/self/mountinfo || problems+=("mount $NETNS_PATH")
! ip link show "$HOST_VETH" >/dev/null 2>&1 || problems+=("link $HOST_VETH")
! ip route | grep -qE "^(${POD_CIDR//./\\.}|${SVC_CIDR//./\\.}) " || problems+=("routes: $(ip route | grep -E "^(${POD_CIDR}|${SVC_CIDR}) ")")
! ls -d /sys/fs/cgroup/*/kubepods >/dev/null 2>&1 || problems+=("cgroups: $(ls -d /sys/fs/cgroup/*/kubepods | tr '\n' ' ')")
if [ ${#problems[@]} -gt 0 ]; then
  printf 'down.sh: left behind: %s\n' "${problems[@]}" >&2
  exit 1
fi
log "cluster down in $(($(date +%s) - T0)) s: no process, mount, netns, veth, route or cgroup left"
