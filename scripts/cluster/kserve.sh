#!/usr/bin/env bash
# Second stage: installs KServe v0.16.0 (controller manager built from its release module,
# CRDs/RBAC/webhooks/inferenceservice-config/ClusterServingRuntimes rendered from the same
# module's config/ with `kubectl kustomize`) in raw-deployment ("Standard") mode without
# Knative, Istio or cert-manager (webhook certs made here), and MinIO as in-cluster S3, into the
# running cluster. Then proves: controller Running, webhooks answer (a server-side dry-run of an
# InferenceService is admitted and defaulted; an invalid one is denied by the validator),
# MinIO answers from the host.
# Usage: kserve.sh [install|uninstall]
#   STORAGE_INITIALIZER_IMAGE  image for KServe's storage initializer (default below); if it is
#                              in the local Docker engine it is loaded into the cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

STORAGE_INITIALIZER_IMAGE=${STORAGE_INITIALIZER_IMAGE:-$IMG_PREFIX/kserve-storage-initializer:dev}
KSERVE_NS=kserve
WEBHOOK_SVC=kserve-webhook-server-service
KSERVE_SRC=$GOMODCACHE/github.com/kserve/kserve@$KSERVE_VERSION/config
WORK=$STATE_DIR/manifests/kserve
KPKI=$PKI_DIR/kserve
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
  for f in "$WORK/kserve-runtimes.yaml" "$WORK/kserve.yaml" "$WORK/minio.yaml" "$WORK/kserve-crds.yaml"; do
    [ -f "$f" ] && kctl delete -f "$f" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  done
  log "KServe and MinIO removed"
  exit 0
fi
[ "$action" = install ] || die "usage: $0 [install|uninstall]"

bash "$REPO_ROOT/scripts/apt-deps.sh" python3-yaml
bash "$CLUSTER_DIR/build.sh" --with-kserve
[ -d "$KSERVE_SRC" ] || (cd "$CLUSTER_DIR/go/kserve" && go mod download github.com/kserve/kserve)

log "loading images: $KSERVE_CONTROLLER_IMAGE $MINIO_IMAGE"
bash "$CLUSTER_DIR/load-image.sh" "$KSERVE_CONTROLLER_IMAGE" "$MINIO_IMAGE"
if docker image inspect "$STORAGE_INITIALIZER_IMAGE" >/dev/null 2>&1; then
  bash "$CLUSTER_DIR/load-image.sh" "$STORAGE_INITIALIZER_IMAGE"
else
  log "note: storage-initializer image $STORAGE_INITIALIZER_IMAGE is not built yet; InferenceServices with a storageUri"
  log "      will wait for it (build it, then: scripts/cluster/load-image.sh $STORAGE_INITIALIZER_IMAGE)"
fi

# --- webhook certificates (own CA; no cert-manager) ----------------------------------------------
mkdir -p "$KPKI" && chmod 700 "$KPKI"
(
  cd "$KPKI"
  umask 077
  tls_ca ca symptomdx-kserve-webhook-ca
  tls_cert tls ca "/CN=$WEBHOOK_SVC.$KSERVE_NS.svc" serverAuth \
    "DNS:$WEBHOOK_SVC,DNS:$WEBHOOK_SVC.$KSERVE_NS,DNS:$WEBHOOK_SVC.$KSERVE_NS.svc,DNS:$WEBHOOK_SVC.$KSERVE_NS.svc.$CLUSTER_DOMAIN"
  rm -f ./*.srl
)

# --- render KServe from its module's config/ ----------------------------------------------------
log "rendering KServe $KSERVE_VERSION manifests from the module's config/"
rm -rf "$WORK" && mkdir -p "$WORK/base" "$WORK/runtimes"
cp -r "$KSERVE_SRC" "$WORK/config" && chmod -R u+w "$WORK/config"
cat >"$WORK/base/kustomization.yaml" <<EOF
# Like KServe's config/default, without cert-manager, kube-rbac-proxy, the LocalModel and
# LLMInferenceService controllers; the controller image is the locally built one.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $KSERVE_NS
resources:
  - ../config/crd
  - ../config/configmap
  - ../config/rbac
  - ../config/manager
  - ../config/webhook
images:
  - name: ko://github.com/kserve/kserve/cmd/manager
    newName: ${KSERVE_CONTROLLER_IMAGE%:*}
    newTag: ${KSERVE_CONTROLLER_IMAGE##*:}
patches:
  - target: {kind: Deployment, name: kserve-controller-manager}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: IfNotPresent
EOF
cat >"$WORK/runtimes/kustomization.yaml" <<EOF
# ClusterServingRuntimes and the default ClusterStorageContainer, as upstream's clusterresources
# (their images are upstream's names: nothing here pulls them; the project brings its own runtime).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../config/runtimes
  - ../config/storagecontainers
EOF
render() { # DIR OUT
  kctl kustomize "$1" 2>"$1/kustomize.err" |
    /usr/bin/python3 "$CLUSTER_DIR/kserve/postprocess.py" "$KSERVE_NS" "$WEBHOOK_SVC" "$KPKI/ca.crt" "$STORAGE_INITIALIZER_IMAGE" >"$2" ||
    { cat "$1/kustomize.err" >&2; die "rendering $1 failed"; }
}
render "$WORK/base" "$WORK/all.yaml"
render "$WORK/runtimes" "$WORK/kserve-runtimes.yaml"
# split: CRDs and the namespace first (they must exist before anything that uses them)
/usr/bin/python3 - "$WORK" <<'EOF'
import sys, yaml
L = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
D = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
work = sys.argv[1]
docs = [d for d in yaml.load_all(open(f"{work}/all.yaml"), Loader=L) if d]
first = [d for d in docs if d["kind"] in ("CustomResourceDefinition", "Namespace")]
rest = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
yaml.dump_all(first, open(f"{work}/kserve-crds.yaml", "w"), Dumper=D, sort_keys=False, width=4096)
yaml.dump_all(rest, open(f"{work}/kserve.yaml", "w"), Dumper=D, sort_keys=False, width=4096)
EOF
grep -q "image: $KSERVE_CONTROLLER_IMAGE\$" "$WORK/kserve.yaml" || die "rendered KServe does not use $KSERVE_CONTROLLER_IMAGE"

# --- apply ---------------------------------------------------------------------------------------
log "applying CRDs"
kctl apply --server-side --force-conflicts -f "$WORK/kserve-crds.yaml" >/dev/null
# shellcheck disable=SC2046
kctl wait --for=condition=Established --timeout=60s $(kctl get crd -o name | grep '\.serving\.kserve\.io$') >/dev/null
kctl -n "$KSERVE_NS" create secret tls kserve-webhook-server-cert --cert="$KPKI/tls.crt" --key="$KPKI/tls.key" \
  --dry-run=client -o yaml | kctl apply -f - >/dev/null
log "applying the controller, RBAC, inferenceservice-config and webhook configurations"
existed=0
kctl -n "$KSERVE_NS" get deploy kserve-controller-manager >/dev/null 2>&1 && existed=1
kctl apply --server-side --force-conflicts -f "$WORK/kserve.yaml" >/dev/null
# a re-install restarts the controller so that it reads a changed certificate or image
[ "$existed" = 1 ] && kctl -n "$KSERVE_NS" rollout restart deploy/kserve-controller-manager >/dev/null
log "waiting for kserve-controller-manager (its readiness probe starts after 30 s)"
kctl -n "$KSERVE_NS" rollout status deploy/kserve-controller-manager --timeout=240s >/dev/null ||
  { kctl -n "$KSERVE_NS" logs deploy/kserve-controller-manager --tail=30 >&2 || true; die "kserve-controller-manager did not become ready"; }
log "applying ClusterServingRuntimes and the default ClusterStorageContainer (through the webhooks)"
for i in $(seq 1 30); do
  if kctl apply --server-side --force-conflicts -f "$WORK/kserve-runtimes.yaml" >"$WORK/runtimes.out" 2>&1; then break; fi
  [ "$i" = 30 ] && { cat "$WORK/runtimes.out" >&2; die "could not apply the ClusterServingRuntimes"; }
  sleep 2
done

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
