#!/usr/bin/env bash
# Imports images from the local Docker engine into the cluster's containerd (namespace k8s.io),
# so pods can use them with imagePullPolicy: IfNotPresent or Never (nothing can be pulled here).
# Usage: scripts/cluster/load-image.sh IMAGE[:TAG]...
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -gt 0 ] || die "usage: $0 IMAGE[:TAG]..."
[ -S "$CTRD_SOCK" ] || die "the cluster's containerd is not running ($CTRD_SOCK missing): run scripts/cluster/up.sh"
for img in "$@"; do
  docker image inspect "$img" >/dev/null 2>&1 || die "image $img is not in the local Docker engine (docker build it first)"
done
docker save "$@" | ctr --address "$CTRD_SOCK" -n k8s.io images import --snapshotter overlayfs - >/dev/null ||
  die "import of $* into the cluster's containerd failed"
listed=$(ctr --address "$CTRD_SOCK" -n k8s.io images ls -q)
for img in "$@"; do
  ref=$img
  case $ref in */*) ;; *) ref=docker.io/library/$ref ;; esac
  case ${ref##*/} in *:*) ;; *) ref=$ref:latest ;; esac
  case ${ref%%/*} in *.* | *:* | localhost) ;; *) ref=docker.io/$ref ;; esac
  grep -qxF "$ref" <<<"$listed" || die "after import, $ref is not listed by the cluster's containerd"
  log "loaded $ref"
done
