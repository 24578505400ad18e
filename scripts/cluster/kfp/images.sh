#!/usr/bin/env bash
# Builds the two images of Kubeflow Pipelines' backend that no reachable registry ships, into
# the local Docker engine (idempotent: a second run is a cache hit):
#   localhost/symptomdx/mlmd-server:<ml-metadata version>  MLMD's gRPC + grpc-web server (mlmd.Dockerfile)
#   localhost/symptomdx/mariadb:10.11                      KFP's "mysql" (mariadb.Dockerfile)
# Usage: scripts/cluster/kfp/images.sh [--load]
#   --load  also import both into the cluster's containerd (scripts/cluster/load-image.sh)
# Check them with: python3 scripts/cluster/kfp/check_images.py
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
load=0
case "${1:-}" in
  "") ;;
  --load) load=1 ;;
  *) echo "usage: $0 [--load]" >&2; exit 2 ;;
esac

# The tag follows the pin in the Dockerfile.
mlmd_version=$(sed -n 's/.*ml-metadata==\([0-9][0-9.]*\).*/\1/p' "$here/mlmd.Dockerfile" | head -1)
[ -n "$mlmd_version" ] || { echo "kfp-images: no ml-metadata pin in mlmd.Dockerfile" >&2; exit 1; }
MLMD_IMAGE=localhost/symptomdx/mlmd-server:$mlmd_version
MARIADB_IMAGE=localhost/symptomdx/mariadb:10.11

bash "$repo/scripts/docker-engine.sh"
bash "$repo/scripts/base-image.sh"

build() { # REF DOCKERFILE
  local ref=$1 file=$2 start=$SECONDS err
  err=$(mktemp)
  if ! docker build -q --network host -f "$here/$file" -t "$ref" "$here" >/dev/null 2>"$err"; then
    echo "kfp-images: building $ref failed:" >&2
    tail -25 "$err" >&2
    rm -f "$err"
    exit 1
  fi
  rm -f "$err"
  local size
  size=$(docker image inspect -f '{{.Size}}' "$ref")
  echo "kfp-images: $ref ($((size / 1000000)) MB, built in $((SECONDS - start)) s)"
}

build "$MLMD_IMAGE" mlmd.Dockerfile
build "$MARIADB_IMAGE" mariadb.Dockerfile

# Debian's mariadb-server must still be 10.11 for the tag to be true.
version=$(docker run --rm --network none --entrypoint mariadbd "$MARIADB_IMAGE" --version 2>/dev/null)
case $version in
  *" 10.11."*) ;;
  *) echo "kfp-images: $MARIADB_IMAGE holds '$version', not 10.11" >&2; exit 1 ;;
esac

if [ "$load" = 1 ]; then
  bash "$repo/scripts/cluster/load-image.sh" "$MLMD_IMAGE" "$MARIADB_IMAGE"
fi
