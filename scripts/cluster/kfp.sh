#!/usr/bin/env bash
# Third stage: Kubeflow Pipelines 2.14.3 (the release terraform installs on EKS) on the running
# cluster, from the release module's own kustomize manifests (env/platform-agnostic and
# cluster-scoped-resources) with the same without-cache components as EKS
# (terraform/modules/platform/kubeflow-pipelines/) plus the local one (kfp/local: images built
# here, requests for one node, no dashboard). Argo's manifests come from the Argo module
# instead of GitHub (kfp/assemble.py). MySQL's and MinIO's claims get hostPath volumes under
# .state/cluster/volumes (this cluster has no provisioner).
# Usage: kfp.sh [install|uninstall]   (install is idempotent; needs build.sh --with-kfp)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

WORK=$STATE_DIR/manifests/kfp
VOLUMES=$STATE_DIR/volumes
COMPONENTS=$REPO_ROOT/terraform/modules/platform/kubeflow-pipelines
PY=$REPO_ROOT/.venv/bin/python
[ -x "$PY" ] || PY=python3
action=${1:-install}
trap 'exit 130' INT TERM
T0=$(date +%s)

kctl get --raw /readyz >/dev/null 2>&1 || die "the cluster is not up: run scripts/cluster/up.sh first"

if [ "$action" = uninstall ]; then
  for d in "$WORK" "$WORK/cluster-scoped"; do
    [ -f "$d/kustomization.yaml" ] && kctl delete -k "$d" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  done
  kctl delete pv kfp-mysql-local kfp-minio-local --ignore-not-found >/dev/null 2>&1 || true
  log "Kubeflow Pipelines removed"
  exit 0
fi
[ "$action" = install ] || die "usage: $0 [install|uninstall]"

bash "$CLUSTER_DIR/build.sh" --with-kserve --with-kfp
bash "$CLUSTER_DIR/kfp/images.sh" --load # ML Metadata's server and the database
bash "$CLUSTER_DIR/kfp/frontend/build.sh" --load # the dashboard (npm; minutes cold)
bash "$CLUSTER_DIR/load-image.sh" "${KFP_IMAGES[@]}" "$MINIO_IMAGE"

module_dir() { # MODULE@VERSION -> its folder in the module cache (downloaded if missing)
  (cd "$CLUSTER_DIR/go/probe" && go mod download -json "$1") | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}
kfp_dir=$(module_dir "github.com/kubeflow/pipelines@$KFP_MODULE_VERSION")
argo_dir=$(module_dir "github.com/argoproj/argo-workflows/v3@$ARGO_VERSION")
"$PY" "$CLUSTER_DIR/kfp/assemble.py" "$kfp_dir" "$argo_dir" "$WORK" \
  --component "$COMPONENTS/without-cache" --component "$CLUSTER_DIR/kfp/local" \
  --cluster-scoped-component "$COMPONENTS/without-cache-cluster-scoped"

log "applying KFP's cluster-scoped resources"
kctl apply --server-side --force-conflicts -k "$WORK/cluster-scoped" >/dev/null
kctl wait --for condition=established --timeout=120s crd/applications.app.k8s.io crd/workflows.argoproj.io >/dev/null

# MySQL's and MinIO's claims (upstream's names), each bound to its own hostPath volume; a
# fresh kubeflow namespace (no claim yet) starts from empty volumes
for claim in mysql:mysql-pv-claim:20Gi minio:minio-pvc:20Gi; do
  IFS=: read -r name pvc size <<<"$claim"
  if ! kctl -n kubeflow get pvc "$pvc" >/dev/null 2>&1; then
    kctl delete pv "kfp-$name-local" --ignore-not-found >/dev/null
    rm -rf "$VOLUMES/kfp-$name"
  fi
  mkdir -p "$VOLUMES/kfp-$name"
  chmod 0777 "$VOLUMES/kfp-$name" # the pods' users (999, 1000) write there
  kctl apply -f - >/dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: kfp-$name-local}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: kubeflow, name: $pvc}
  hostPath: {path: "$VOLUMES/kfp-$name", type: Directory}
PV
done

log "applying Kubeflow Pipelines $KFP_VERSION"
kctl apply --server-side --force-conflicts -k "$WORK" >/dev/null
for deployment in $(kctl -n kubeflow get deployments -o name); do
  kctl -n kubeflow rollout status "$deployment" --timeout=600s >/dev/null ||
    die "$deployment did not become ready: $(kctl -n kubeflow get pods -o wide 2>&1 | tail -n +1)"
done
log "Kubeflow Pipelines $KFP_VERSION ready in $(($(date +%s) - T0)) s: $(kctl -n kubeflow get deployments -o name | tr '\n' ' ')"
