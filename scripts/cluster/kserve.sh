#!/usr/bin/env bash
# Second stage: the platform's serving half as terraform installs it on EKS - cert-manager v1.18.2
# (its chart, helm/platform/cert-manager.yaml) and KServe v0.16.0 (its kserve-crd and kserve charts,
# helm/platform/kserve.yaml, through helm/platform's post-renderer) - each with one local values
# file for images and requests only (kserve/values-*.yaml); charts and binaries come from the
# release modules, images are built here. And MinIO as in-cluster S3. Then proves: the
# controller Running, webhooks answer (a server-side dry-run of an InferenceService is admitted
# and defaulted; an invalid one is denied), an InferenceService becomes Ready, MinIO answers.
# Usage: kserve.sh [install|uninstall|race]
#   race   installs the kserve chart as upstream documents it (no post-renderer) on a cluster
#          without KServe, prints helm's error, and removes it again: its ClusterServingRuntimes
#          meet webhooks whose server is still starting (the first-install race)
#   STORAGE_INITIALIZER_IMAGE  image for KServe's storage initializer (default below); if it is
#                              in the local Docker engine it is loaded into the cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

STORAGE_INITIALIZER_IMAGE=${STORAGE_INITIALIZER_IMAGE:-$IMG_PREFIX/kserve-storage-initializer:dev}
KSERVE_NS=kserve
CM_NS=cert-manager
KSERVE_CHARTS=$GOMODCACHE/github.com/kserve/kserve@$KSERVE_VERSION/charts
CM_MODULE=$GOMODCACHE/github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION
WORK=$STATE_DIR/manifests/kserve
PLATFORM_VALUES=$REPO_ROOT/helm/platform
POST_RENDERER=kserve-without-cluster-runtimes # helm/platform/post-renderers/<name>
MINIO_DATA_DIR=$STATE_DIR/volumes/minio
action=${1:-install}
T0=$(date +%s)
trap 'exit 130' INT TERM

kctl get --raw /readyz >/dev/null 2>&1 || die "the cluster is not up: run scripts/cluster/up.sh first"

if [ "$action" = uninstall ]; then
  # KServe's resources carry finalizers that only its controller removes: delete them while
  # it still runs; whatever is still stuck after that loses its finalizers.
  for kind in inferenceservices inferencegraphs trainedmodels; do
    kctl get crd "$kind.serving.kserve.io" >/dev/null 2>&1 || continue
    kctl delete "$kind.serving.kserve.io" --all -A --wait=true --timeout=60s >/dev/null 2>&1 || true
    kctl get "$kind.serving.kserve.io" -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' 2>/dev/null |
      while read -r ns name; do
        [ -n "$name" ] && kctl -n "$ns" patch "$kind.serving.kserve.io" "$name" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
      done
  done
  kctl delete namespace kserve-smoke --ignore-not-found --wait=false >/dev/null 2>&1 || true
  khelm uninstall kserve -n "$KSERVE_NS" --wait --timeout 120s >/dev/null 2>&1 || true
  khelm uninstall kserve-crd -n "$KSERVE_NS" --wait --timeout 120s >/dev/null 2>&1 || true
  khelm uninstall cert-manager -n "$CM_NS" --wait --timeout 120s >/dev/null 2>&1 || true
  [ -f "$WORK/minio.yaml" ] && kctl delete -f "$WORK/minio.yaml" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  log "KServe and MinIO removed"
  exit 0
fi
case $action in install | race) ;; *) die "usage: $0 [install|uninstall|race]" ;; esac

bash "$CLUSTER_DIR/build.sh" --with-kserve
[ -d "$KSERVE_CHARTS" ] || (cd "$CLUSTER_DIR/go/kserve" && go mod download github.com/kserve/kserve)
[ -d "$CM_MODULE" ] || (cd "$CLUSTER_DIR/go/cert-manager" && go mod download github.com/cert-manager/cert-manager)

log "loading images: $KSERVE_CONTROLLER_IMAGE $KUBE_RBAC_PROXY_IMAGE $MINIO_IMAGE ${CERT_MANAGER_IMAGES[*]}"
bash "$CLUSTER_DIR/load-image.sh" "$KSERVE_CONTROLLER_IMAGE" "$KUBE_RBAC_PROXY_IMAGE" "$MINIO_IMAGE" "${CERT_MANAGER_IMAGES[@]}"
if docker image inspect "$STORAGE_INITIALIZER_IMAGE" >/dev/null 2>&1; then
  bash "$CLUSTER_DIR/load-image.sh" "$STORAGE_INITIALIZER_IMAGE"
else
  log "note: storage-initializer image $STORAGE_INITIALIZER_IMAGE is not built yet; InferenceServices with a storageUri"
  log "      will wait for it (build it, then: scripts/cluster/load-image.sh $STORAGE_INITIALIZER_IMAGE)"
fi
mkdir -p "$WORK"

# --- cert-manager: its chart as its release tool packages it (make/manifests.mk: Chart.yaml with
# the version, templates/crds.yaml from deploy/crds), from the release module ---------------------
chart=$WORK/charts/cert-manager
rm -rf "$chart" && mkdir -p "$WORK/charts" && cp -r "$CM_MODULE/deploy/charts/cert-manager" "$chart" && chmod -R u+w "$chart"
sed -e "s/^version: .*/version: $CERT_MANAGER_VERSION/" -e "s/^appVersion: .*/appVersion: $CERT_MANAGER_VERSION/" \
  -e 's/{{IS_PRERELEASE}}/false/' "$chart/Chart.template.yaml" >"$chart/Chart.yaml"
for crd in "$CM_MODULE"/deploy/crds/crd-*.yaml; do printf -- '---\n'; cat "$crd"; done >"$chart/templates/crds.yaml"
rm -f "$chart/Chart.template.yaml" "$chart/README.template.md"
kctl_namespace "$CM_NS"
log "helm upgrade --install cert-manager (chart $CERT_MANAGER_VERSION, platform values + local images)"
khelm upgrade --install cert-manager "$chart" -n "$CM_NS" -f "$PLATFORM_VALUES/cert-manager.yaml" \
  -f "$CLUSTER_DIR/kserve/values-cert-manager.yaml" --wait --timeout 300s >"$WORK/cert-manager.log" 2>&1 ||
  { cat "$WORK/cert-manager.log" >&2; die "helm install of cert-manager failed"; }

# --- KServe: the kserve-crd chart, then the kserve chart through the platform's post-renderer ----
if ! khelm plugin list 2>/dev/null | grep -qw "$POST_RENDERER"; then
  khelm plugin install "$PLATFORM_VALUES/post-renderers/$POST_RENDERER" >/dev/null
fi
kctl_namespace "$KSERVE_NS"
log "helm upgrade --install kserve-crd (chart $KSERVE_VERSION)"
khelm upgrade --install kserve-crd "$KSERVE_CHARTS/kserve-crd" -n "$KSERVE_NS" --wait --timeout 300s \
  >"$WORK/kserve-crd.log" 2>&1 || { cat "$WORK/kserve-crd.log" >&2; die "helm install of kserve-crd failed"; }
kserve_release() { # EXTRA-HELM-ARGS...: the kserve release as terraform makes it, with our images
  khelm upgrade --install kserve "$KSERVE_CHARTS/kserve-resources" -n "$KSERVE_NS" \
    -f "$PLATFORM_VALUES/kserve.yaml" -f "$CLUSTER_DIR/kserve/values-kserve.yaml" \
    --set kserve.storage.image="${STORAGE_INITIALIZER_IMAGE%:*}" --set kserve.storage.tag="${STORAGE_INITIALIZER_IMAGE##*:}" \
    --wait --timeout 300s "$@"
}
if [ "$action" = race ]; then
  khelm status kserve -n "$KSERVE_NS" >/dev/null 2>&1 && die "KServe is installed: the race shows on a first install only"
  log "installing the kserve chart without the post-renderer (as upstream documents it)"
  if kserve_release >"$WORK/race.log" 2>&1; then status=0; else status=$?; fi
  cat "$WORK/race.log"
  khelm uninstall kserve -n "$KSERVE_NS" --wait --timeout 120s >/dev/null 2>&1 || true
  [ "$status" != 0 ] || die "the first install succeeded: no race this time"
  exit 0
fi
log "helm upgrade --install kserve (chart $KSERVE_VERSION, platform values + local images, post-renderer $POST_RENDERER)"
kserve_release --post-renderer "$POST_RENDERER" >"$WORK/kserve.log" 2>&1 ||
  { cat "$WORK/kserve.log" >&2; die "helm install of kserve failed"; }

# --- MinIO ---------------------------------------------------------------------------------------
log "MinIO ($MINIO_IMAGE) in namespace minio"
mkdir -p "$MINIO_DATA_DIR" && chown 65534:65534 "$MINIO_DATA_DIR" && chmod 700 "$MINIO_DATA_DIR"
sed -e "s|\${MINIO_IMAGE}|$MINIO_IMAGE|g" -e "s|\${MINIO_DATA_DIR}|$MINIO_DATA_DIR|g" \
  "$CLUSTER_DIR/kserve/minio.yaml" >"$WORK/minio.yaml"
kctl apply -f "$WORK/minio.yaml" >/dev/null
if ! kctl -n minio get secret minio-root-credentials >/dev/null 2>&1; then
  kctl -n minio create secret generic minio-root-credentials --from-literal=rootUser=minio-admin \
    --from-literal=rootPassword="$(openssl rand -hex 24)" >/dev/null
fi
kctl -n minio rollout status deploy/minio --timeout=120s >/dev/null ||
  { kctl -n minio logs deploy/minio --tail=30 >&2 || true; die "MinIO did not become ready"; }

# --- prove it ------------------------------------------------------------------------------------
fails=0
phase=$(kctl -n "$KSERVE_NS" get pod -l control-plane=kserve-controller-manager -o jsonpath='{.items[0].status.phase}')
if [ "$phase" = Running ]; then echo "PASS kserve-controller-manager Running"; else echo "FAIL kserve-controller-manager: $phase"; fails=$((fails + 1)); fi

kctl delete namespace kserve-smoke --ignore-not-found --wait=true --timeout=90s >/dev/null
kctl create namespace kserve-smoke >/dev/null
isvc() { # NAME EXTRA-PREDICTOR-YAML
  cat <<EOF
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: $1
  namespace: kserve-smoke
  annotations:
    serving.kserve.io/deploymentMode: Standard
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: s3://symptom-dx-models/models/example
$2
EOF
}
if out=$(isvc dryrun-ok "" | kctl create --dry-run=server -o yaml -f - 2>&1) &&
  grep -q "protocolVersion\|runtime:\|resources:" <<<"$out"; then
  echo "PASS webhooks: InferenceService admitted by server-side dry-run (defaulted by the mutating webhook)"
else
  echo "FAIL webhooks: dry-run create of an InferenceService: $out"
  fails=$((fails + 1))
fi
if out=$(isvc dryrun-bad "" | sed 's|deploymentMode: Standard|deploymentMode: Standard\n    serving.kserve.io/autoscalerClass: bogus|' |
  kctl create --dry-run=server -f - 2>&1); then
  echo "FAIL webhooks: an InferenceService with an unknown autoscaler class was admitted"
  fails=$((fails + 1))
elif grep -q 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied' <<<"$out"; then
  echo "PASS webhooks: an invalid InferenceService is denied: ${out#*denied the request: }"
else
  echo "FAIL webhooks: unexpected error: $out"
  fails=$((fails + 1))
fi
# A real InferenceService (custom predictor: the probe image, no storageUri): the controller
# creates its Deployment and Service in Standard mode, it becomes Ready and answers the host.
kctl apply -f - >/dev/null <<EOF
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: probe
  namespace: kserve-smoke
  annotations:
    serving.kserve.io/deploymentMode: Standard
spec:
  predictor:
    containers:
      - name: kserve-container
        image: $PROBE_IMAGE
        imagePullPolicy: Never
        args: ["serve", ":8080"]
        ports: [{containerPort: 8080, protocol: TCP}]
EOF
if kctl -n kserve-smoke wait --for=condition=Ready --timeout=120s isvc/probe >/dev/null 2>&1; then
  ip=$(kctl -n kserve-smoke get svc probe-predictor -o jsonpath='{.spec.clusterIP}')
  body=""
  for _ in $(seq 1 20); do # the Service's rules may trail the Ready condition by a moment
    body=$(curl -fsS --max-time 3 "http://$ip/" 2>/dev/null) && break
    sleep 1
  done
  if [ -n "$body" ]; then
    echo "PASS InferenceService probe Ready (Deployment + Service made by the controller); http://$ip/ answered: $body"
  else
    echo "FAIL InferenceService probe Ready but its Service $ip does not answer"
    fails=$((fails + 1))
  fi
else
  echo "FAIL InferenceService probe not Ready: $(kctl -n kserve-smoke get isvc probe -o jsonpath='{.status.conditions}')"
  fails=$((fails + 1))
fi
kctl delete namespace kserve-smoke --wait=false >/dev/null 2>&1 || true

minio_ip=$(kctl -n minio get svc minio -o jsonpath='{.spec.clusterIP}')
if curl -fsS --max-time 5 -o /dev/null "http://$minio_ip:9000/minio/health/ready"; then
  echo "PASS MinIO answers at http://$minio_ip:9000 (minio.minio.svc.$CLUSTER_DOMAIN:9000)"
else
  echo "FAIL MinIO at http://$minio_ip:9000 does not answer"
  fails=$((fails + 1))
fi

log "kserve.sh done in $(($(date +%s) - T0)) s"
cat <<EOF

KServe $KSERVE_VERSION (Standard/raw deployment mode) and MinIO are installed.
  MinIO S3 endpoint: http://minio.minio.svc.$CLUSTER_DOMAIN:9000 (from the host: http://$minio_ip:9000)
  MinIO root credentials: kubectl -n minio get secret minio-root-credentials -o jsonpath='{.data.rootPassword}' | base64 -d
  Storage initializer image: $STORAGE_INITIALIZER_IMAGE (override with STORAGE_INITIALIZER_IMAGE=...)
EOF
[ "$fails" -eq 0 ] || die "$fails check(s) failed"
