#!/usr/bin/env bash
# Builds every target of the Dockerfile under the references manifests/base/kustomization.yaml
# names (storage-initializer beside serving). With REGISTRY and TAG set (`make images`), first
# points the kustomization and the compiled pipeline at REGISTRY/<name>:TAG; with PUSH=1,
# pushes after building. `make test` calls it with neither, so it never rewrites references.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ -n "${REGISTRY:-}" ] || [ -n "${TAG:-}" ]; then
  $PY -m pipelines.compile --registry "${REGISTRY:?set REGISTRY with TAG}" --tag "${TAG:?set TAG with REGISTRY}"
fi
bash scripts/docker-engine.sh
bash scripts/base-image.sh
$PY -m pipelines.compile --list-images | while read -r target ref; do
  start=$SECONDS
  if ! docker build -q --network host --target "$target" -t "$ref" . >/dev/null 2>/tmp/images-$$.err; then
    echo "images: building $ref failed:" >&2
    tail -25 /tmp/images-$$.err >&2
    rm -f /tmp/images-$$.err
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "$ref")
  echo "images: $ref ($((size / 1000000)) MB, built in $((SECONDS - start)) s)"
  if [ "${PUSH:-0}" = 1 ]; then docker push -q "$ref"; fi
done
rm -f /tmp/images-$$.err
