#!/usr/bin/env bash
# Enforces NetworkPolicies on the local cluster with sigs.k8s.io/kube-network-policies v0.8.0
# (the bridge CNI of up.sh applies them but enforces nothing). The enforcer puts the first packet
# of each new connection to or from a pod that a policy selects on NFQUEUE 98 (nftables table
# `inet kube-network-policies` in the node's network namespace, hook postrouting) and answers
# accept/drop from the policies; later packets pass as established.
#
# Usage: netpol.sh install|uninstall|status
#   install    build (build.sh --with-netpol), load the image into the cluster, apply the
#              DaemonSet rendered from the module's install.yaml (netpol/kustomization.yaml),
#              wait until its table is there
#   uninstall  delete what install applied, then the nftables table if the enforcer left it
#   status     the DaemonSet and the table (chains, the pod IPs whose connections are queued)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KNP_MODULE=sigs.k8s.io/kube-network-policies
KNP_NFT=$BIN_DIR/knp-nftables # ours (go/kube-network-policies/nftables): shows or deletes the table
KNP_MANIFEST=$STATE_DIR/manifests/kube-network-policies.yaml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render() {
  local src=$GOMODCACHE/$KNP_MODULE@$KNP_VERSION work=$STATE_DIR/manifests/kube-network-policies
  [ -f "$src/install.yaml" ] || (cd "$tmp" && go mod download "$KNP_MODULE@$KNP_VERSION") >/dev/null
  rm -rf "$work" && mkdir -p "$work"
  install -m 644 "$src/install.yaml" "$work/"
  sed -e "s|\${NODE_IP}|$NODE_IP|g" -e "s|\${APISERVER_PORT}|${APISERVER_URL##*:}|g" \
    "$CLUSTER_DIR/netpol/kustomization.yaml" >"$work/kustomization.yaml"
  kctl kustomize "$work" >"$KNP_MANIFEST.new" 2>"$work/kustomize.err" ||
    { cat "$work/kustomize.err" >&2; die "kubectl kustomize of kube-network-policies' install.yaml failed"; }
  grep -q "image: $KNP_IMAGE\$" "$KNP_MANIFEST.new" || die "rendered manifest does not use $KNP_IMAGE"
  mv "$KNP_MANIFEST.new" "$KNP_MANIFEST"
}

table_present() { innode "$KNP_NFT" show >/dev/null 2>&1; }

install_() {
  need_root
  kctl get --raw /readyz >/dev/null 2>&1 || die "the cluster does not answer: run scripts/cluster/up.sh"
  bash "$CLUSTER_DIR/build.sh" --with-netpol
  bash "$CLUSTER_DIR/load-image.sh" "$KNP_IMAGE"
  mkdir -p "$STATE_DIR/manifests"
  render
  kctl apply -f "$KNP_MANIFEST" >/dev/null
  # a new image under the same tag (rebuilt binary): roll the pods
  local want have
  want=$(docker image inspect -f '{{.Id}}' "$KNP_IMAGE")
  have=$(kctl -n kube-system get pods -l app=kube-network-policies \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].imageID}{"\n"}{end}' 2>/dev/null | sort -u)
  if [ -n "$have" ] && [ "$have" != "$want" ] && [ "${have#*@}" != "$want" ]; then
    log "restarting the enforcer for the rebuilt image"
    kctl -n kube-system rollout restart ds/kube-network-policies >/dev/null
  fi
  kctl -n kube-system rollout status ds/kube-network-policies --timeout=120s >/dev/null ||
    die "kube-network-policies did not roll out: kubectl -n kube-system logs ds/kube-network-policies"
  wait_for 60 "the enforcer's nftables table" table_present ||
    die "no table inet kube-network-policies in netns $NETNS: kubectl -n kube-system logs ds/kube-network-policies"
  log "kube-network-policies $KNP_VERSION enforces NetworkPolicies (table inet kube-network-policies in $NETNS)"
}

uninstall() {
  need_root
  local gone=1
  if [ -f "$KNP_MANIFEST" ]; then
    kctl delete -f "$KNP_MANIFEST" --ignore-not-found --wait=true --timeout=120s >/dev/null || gone=0
  else
    kctl -n kube-system delete ds/kube-network-policies sa/kube-network-policies --ignore-not-found --wait=true --timeout=120s >/dev/null || gone=0
    kctl delete clusterrolebinding/kube-network-policies clusterrole/kube-network-policies --ignore-not-found >/dev/null || gone=0
  fi
  no_pods() { [ -z "$(kctl -n kube-system get pods -l app=kube-network-policies -o name 2>/dev/null)" ]; }
  wait_for 60 "the enforcer's pods to end" no_pods || die "kube-network-policies pods still there after 60 s"
  [ "$gone" = 1 ] || die "kubectl delete of kube-network-policies failed"
  # the pod deletes its table on SIGINT (STOPSIGNAL); a killed one leaves it, and with it every
  # new connection of a selected pod queued to nobody, i.e. dropped
  if [ -x "$KNP_NFT" ] && [ -e "$NETNS_PATH" ]; then innode "$KNP_NFT" delete >&2; fi
  rm -f "$KNP_MANIFEST"
  log "kube-network-policies removed (NetworkPolicies are applied but no longer enforced)"
}

status() {
  kctl -n kube-system get ds,pods -l app=kube-network-policies -o wide
  innode "$KNP_NFT" show
}

case ${1:-} in
  install) install_ ;;
  uninstall) uninstall ;;
  status) status ;;
  -h | --help) sed -n '2,13p' "$0" ;;
  *) die "usage: $0 install|uninstall|status" ;;
esac
