#!/usr/bin/env bash
# Builds every target of the Dockerfile under the references manifests/base/kustomization.yaml
# names (storage-initializer beside serving). With REGISTRY and TAG set (`make images`), first
# points the kustomization and the compiled pipeline at REGISTRY/<name>:TAG; with PUSH=1,
# pushes after building, logging in first to an Amazon ECR registry (`aws ecr
# get-login-password`, credentials from the environment). `make test` calls it with neither,
# so it never rewrites references.
# IMAGE_PLATFORM goes to `docker build --platform`; by default linux/amd64 (the EKS nodes')
# when REGISTRY is set, the engine's own when it is not (`make test` runs what it builds here).
# Set and empty: the engine's own. Each image is checked to be of that platform: the classic
# builder (no buildx) accepts the flag but reuses a local base image of another architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ -z "${IMAGE_PLATFORM+set}" ]; then
  IMAGE_PLATFORM=${REGISTRY:+linux/amd64}
fi
if [ -n "${REGISTRY:-}" ] || [ -n "${TAG:-}" ]; then
  $PY -m pipelines.compile --registry "${REGISTRY:?set REGISTRY with TAG}" --tag "${TAG:?set TAG with REGISTRY}"
fi
bash scripts/docker-engine.sh
bash scripts/base-image.sh
images=$($PY -m pipelines.compile --list-images)
if [ "${PUSH:-0}" = 1 ]; then
  # <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: one login per registry host.
  ecr='^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
  for host in $(echo "$images" | awk '{ sub(/\/.*/, "", $2); print $2 }' | sort -u); do
    if [[ $host =~ $ecr ]]; then
      echo "images: docker login $host (aws ecr get-login-password --region ${BASH_REMATCH[2]})"
      aws ecr get-login-password --region "${BASH_REMATCH[2]}" |
        docker login --username AWS --password-stdin "$host" >/dev/null
    fi
  done
fi
# Every image built here carries this label, and its build stage is tagged too: what a new build
# replaces is then an untagged image with the label, removed after the builds (each rebuild left
# ~3 GB of them behind), while the stages' layers stay as the next build's cache.
LABEL=io.symptom-dx.project=symptom-dx
build() { # build TARGET REF
  docker build -q --network host ${IMAGE_PLATFORM:+--platform "$IMAGE_PLATFORM"} --label "$LABEL" \
    --target "$1" -t "$2" . >/dev/null 2>/tmp/images-$$.err && return 0
  echo "images: building $2 failed:" >&2
  tail -25 /tmp/images-$$.err >&2
  rm -f /tmp/images-$$.err
  exit 1
}
while read -r target ref; do
  start=$SECONDS
  build "build-$target" "symptom-dx-build-cache:$target"
  build "$target" "$ref"
  platform=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$ref")
  if [ -n "$IMAGE_PLATFORM" ] && [ "$platform" != "$(echo "$IMAGE_PLATFORM" | cut -d/ -f1,2)" ]; then
    echo "images: $ref is $platform, not $IMAGE_PLATFORM: the builder used a local base image of" >&2
    echo "images: this machine's platform. Build with BuildKit (docker buildx), or on a $IMAGE_PLATFORM" >&2
    echo "images: machine; IMAGE_PLATFORM= builds for this machine." >&2
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "$ref")
  echo "images: $ref ($platform, $((size / 1000000)) MB, built in $((SECONDS - start)) s)"
  if [ "${PUSH:-0}" = 1 ]; then docker push -q "$ref"; fi
done <<<"$images"
rm -f /tmp/images-$$.err
docker image prune -f --filter "label=$LABEL" >/dev/null
