#!/usr/bin/env bash
# Builds the cluster's binaries from upstream release modules (Go module proxy) into
# .tools/cluster/bin, and the cluster's images into the local Docker engine.
# Idempotent: a step whose inputs (go.mod/go.sum/sources/flags/Go version) are unchanged is
# skipped, so a warm run takes seconds.
# Usage: build.sh [--no-images] [--with-kserve] [--with-kfp] [--with-monitoring] [--with-netpol]
#   --with-kserve adds KServe's manager and MinIO; --with-kfp the Kubeflow Pipelines backend and Argo;
#   --with-monitoring what kube-prometheus-stack runs (operator, reloader, Prometheus, Alertmanager, node-exporter);
#   --with-netpol the NetworkPolicy enforcer kube-network-policies (used by netpol.sh)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WITH_IMAGES=1
WITH_KSERVE=0
WITH_KFP=0
WITH_MONITORING=0
WITH_NETPOL=0
for a in "$@"; do
  case $a in
    --no-images) WITH_IMAGES=0 ;;
    --with-kserve) WITH_KSERVE=1 ;;
    --with-kfp) WITH_KFP=1 ;;
    --with-monitoring) WITH_MONITORING=1 ;;
    --with-netpol) WITH_NETPOL=1 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $a" ;;
  esac
done

command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
# gcc/libc6-dev for the static pause binary; docker.io for image builds (its dockerd must be
# running: this script does not start it)
bash "$REPO_ROOT/scripts/apt-deps.sh" gcc libc6-dev docker.io
# --with-kfp: a Python venv for the proto generator (uv when present), binutils' readelf
[ "$WITH_KFP" = 0 ] || bash "$REPO_ROOT/scripts/apt-deps.sh" python3-venv binutils
mkdir -p "$BIN_DIR" "$STAMP_DIR" "$GOMODCACHE" "$GOCACHE"
exec 9>"$TOOLS_DIR/cluster/build.lock"
flock -n 9 || { log "another build.sh is running; waiting for it"; flock 9; }

GO_VERSION=$(go env GOVERSION)
export CGO_ENABLED=0
BUILT=0
T0=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'echo "build.sh: interrupted" >&2; exit 130' INT TERM

# stamp_of NAME FILES... -> hash of the files' contents plus the extra key in $STAMP_EXTRA
stamp_of() {
  local name=$1
  shift
  { printf '%s\n%s\n%s\n' "$name" "$GO_VERSION" "${STAMP_EXTRA:-}"; cat "$@"; } | sha256sum | cut -c1-32
}
up_to_date() { # NAME STAMP OUTPUTS...
  local name=$1 stamp=$2 o
  shift 2
  [ "$(cat "$STAMP_DIR/$name" 2>/dev/null)" = "$stamp" ] || return 1
  for o in "$@"; do [ -x "$o" ] || return 1; done
}
step() { # NAME STAMP OUTPUTS... -- CMD...
  local name=$1 stamp=$2 outs=() t
  shift 2
  while [ "$1" != "--" ]; do outs+=("$1"); shift; done
  shift
  if up_to_date "$name" "$stamp" "${outs[@]}"; then
    log "$name: up to date"
    return 0
  fi
  log "$name: building"
  t=$(date +%s)
  rm -f "$STAMP_DIR/$name"
  "$@" >"$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log" >&2; die "$name: build failed (output above)"; }
  echo "$stamp" >"$STAMP_DIR/$name"
  BUILT=1
  log "$name: built in $(($(date +%s) - t)) s"
}

GO=$CLUSTER_DIR/go

# module_copy MODULE VERSION GO.SUM DEST: download MODULE@VERSION, check its hash against the
# one recorded in GO.SUM (no sum.golang.org lookup: it answers 404 for KFP's api pseudo-version),
# copy it to DEST (writable)
module_copy() {
  local m=$1 v=$2 out dir sum want
  out=$(cd "$tmp" && GONOSUMDB=$m go mod download -json "$m@$v") || { echo "$out"; return 1; }
  dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$out")
  sum=$(sed -n 's/^\t"Sum": "\(.*\)",$/\1/p' <<<"$out")
  want=$(awk -v m="$m" -v v="$v" '$1 == m && $2 == v { print $3 }' "$3")
  [ -n "$want" ] && [ "$sum" = "$want" ] || { echo "$m@$v: hash '$sum', $3 says '$want'"; return 1; }
  rm -rf "$4" && cp -r "$dir" "$4" && chmod -R u+w "$4"
}

# --- Kubernetes: six binaries in one go build (they share most packages) ---
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
K8S_LDFLAGS="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  K8S_LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=34"
  K8S_LDFLAGS+=" -X $p.gitTreeState=clean -X $p.buildDate=$K8S_BUILD_DATE"
done
K8S_TAGS=selinux,notest,grpcnotrace # as upstream's hack/lib/golang.sh
build_k8s() {
  cd "$GO/k8s"
  go build -trimpath -tags "$K8S_TAGS" -ldflags "$K8S_LDFLAGS" -o "$BIN_DIR/" \
    "${K8S_CMDS[@]/#/k8s.io/kubernetes/cmd/}"
}
step kubernetes "$(STAMP_EXTRA="$K8S_LDFLAGS $K8S_TAGS" stamp_of k8s "$GO/k8s/go.mod" "$GO/k8s/go.sum")" \
  "${K8S_CMDS[@]/#/$BIN_DIR/}" -- build_k8s

# --- etcd (wrapper main around go.etcd.io/etcd/server/v3/etcdmain) ---
build_etcd() { cd "$GO/etcd" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" .; }
step etcd "$(stamp_of etcd "$GO/etcd/go.mod" "$GO/etcd/go.sum" "$GO/etcd/main.go")" \
  "$BIN_DIR/etcd" -- build_etcd

# --- CoreDNS (slim plugin set, upstream entry point) ---
build_coredns() {
  cd "$GO/coredns" && go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    -o "$BIN_DIR/coredns" .
}
step coredns "$(stamp_of coredns "$GO/coredns/go.mod" "$GO/coredns/go.sum" "$GO/coredns/main.go")" \
  "$BIN_DIR/coredns" -- build_coredns

# --- metrics-server ---
MS_LDFLAGS="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
MS_LDFLAGS+=" -X k8s.io/client-go/pkg/version.buildDate=$K8S_BUILD_DATE"
build_ms() {
  cd "$GO/metrics-server" && go build -trimpath -ldflags "$MS_LDFLAGS" \
    -o "$BIN_DIR/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server
}
step metrics-server "$(STAMP_EXTRA=$MS_LDFLAGS stamp_of ms "$GO/metrics-server/go.mod" "$GO/metrics-server/go.sum")" \
  "$BIN_DIR/metrics-server" -- build_ms

# --- crictl (down.sh uses it to stop pods the CRI way, so CNI releases their addresses) ---
build_crictl() {
  cd "$GO/crictl" && go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    -o "$BIN_DIR/crictl" sigs.k8s.io/cri-tools/cmd/crictl
}
step crictl "$(stamp_of crictl "$GO/crictl/go.mod" "$GO/crictl/go.sum")" "$BIN_DIR/crictl" -- build_crictl

# --- probe: the tiny test image's program (ours) ---
build_probe() { cd "$GO/probe" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/probe" .; }
step probe "$(stamp_of probe "$GO/probe/go.mod" "$GO/probe/main.go")" "$BIN_DIR/probe" -- build_probe

# --- pause: the sandbox image's program, compiled from the k8s.io/kubernetes module ---
PAUSE_SRC=$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c
build_pause() {
  [ -f "$PAUSE_SRC" ] || (cd "$GO/k8s" && go mod download k8s.io/kubernetes)
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-symptomdx" -o "$BIN_DIR/pause" "$PAUSE_SRC"
  strip "$BIN_DIR/pause"
}
[ -f "$PAUSE_SRC" ] || (cd "$GO/k8s" && go mod download k8s.io/kubernetes)
step pause "$(STAMP_EXTRA=$PAUSE_VERSION stamp_of pause "$PAUSE_SRC")" "$BIN_DIR/pause" -- build_pause

# --- second stage: KServe controller manager, MinIO ---
if [ "$WITH_KSERVE" = 1 ]; then
  build_kserve() {
    cd "$GO/kserve" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/kserve-manager" github.com/kserve/kserve/cmd/manager
  }
  step kserve-manager "$(stamp_of kserve "$GO/kserve/go.mod" "$GO/kserve/go.sum")" "$BIN_DIR/kserve-manager" -- build_kserve
  # cert-manager, which KServe's chart needs: its cmd/* modules are not served, so our own mains in
  # go/cert-manager (a module path inside cert-manager's, to reach its internal/ packages) wire
  # the root module's packages; one go build for the four, flags as upstream's make/00_mod.mk
  CM_NAMES=(controller webhook cainjector startupapicheck)
  CM_LDFLAGS="-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER_VERSION"
  CM_LDFLAGS+=" -X github.com/cert-manager/cert-manager/pkg/util.AppGitCommit=686afa62160249022a0205d3a9bf5f059476c684"
  mkdir -p "$BIN_DIR/cert-manager"
  build_cm() { cd "$GO/cert-manager" && go build -trimpath -ldflags "$CM_LDFLAGS" -o "$BIN_DIR/cert-manager/" "${CM_NAMES[@]/#/./}"; }
  step cert-manager "$(STAMP_EXTRA=$CM_LDFLAGS stamp_of cert-manager "$GO/cert-manager/go.mod" "$GO/cert-manager/go.sum" \
    "$GO"/cert-manager/*/*.go)" "${CM_NAMES[@]/#/$BIN_DIR/cert-manager/}" -- build_cm
  # kube-rbac-proxy: the sidecar KServe's chart puts in front of the controller's metrics
  KRP_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_RBAC_PROXY_VERSION"
  KRP_LDFLAGS+=" -X k8s.io/component-base/version/verflag.programName=kube-rbac-proxy"
  build_krp() {
    cd "$GO/kube-rbac-proxy" && go build -trimpath -ldflags "$KRP_LDFLAGS" -o "$BIN_DIR/kube-rbac-proxy" \
      github.com/brancz/kube-rbac-proxy/cmd/kube-rbac-proxy
  }
  step kube-rbac-proxy "$(STAMP_EXTRA=$KRP_LDFLAGS stamp_of krp "$GO/kube-rbac-proxy/go.mod" "$GO/kube-rbac-proxy/go.sum")" \
    "$BIN_DIR/kube-rbac-proxy" -- build_krp
  # MinIO's documented source install; its go.mod has no replace directives, so plain go install
  MINIO_LDFLAGS="-s -w" # version stays DEVELOPMENT.GOGET, as with the documented `go install`
  build_minio() {
    mkdir -p "$tmp/gobin" && GOBIN=$tmp/gobin go install -trimpath -ldflags "$MINIO_LDFLAGS" "github.com/minio/minio@$MINIO_VERSION" &&
      mv "$tmp/gobin/minio" "$BIN_DIR/minio"
  }
  step minio "$(STAMP_EXTRA="$MINIO_VERSION $MINIO_LDFLAGS" stamp_of minio /dev/null)" "$BIN_DIR/minio" -- build_minio
fi

# --- third stage: Kubeflow Pipelines 2.14.3 backend and Argo Workflows v3.6.7 ---
# KFP's go.mod replaces its api and kubernetes_platform modules with its own folders, which are
# not in the module zip: the build folder $KFP_SRC holds the wrapper go.mod/go.sum (go/kfp) next
# to copies of the versions it requires, whose pipelinespec/kubernetesplatform Go code is
# regenerated from the 2.14.3 protos in PyPI's kfp-pipeline-spec/kfp-kubernetes (kfp/genproto.py).
if [ "$WITH_KFP" = 1 ]; then
  KFP_SRC=$TOOLS_DIR/kfp/src
  KFP_BIN=$BIN_DIR/kfp
  ARGO_BIN=$BIN_DIR/argo
  KFP_PKG=github.com/kubeflow/pipelines/backend/src
  KFP_PY_PKGS=("kfp-pipeline-spec==$KFP_VERSION" "kfp-kubernetes==$KFP_VERSION" protobuf==6.31.1 googleapis-common-protos==1.70.0)
  KFP_GEN=(api/v2alpha1/go/pipelinespec/pipeline_spec.pb.go
    kubernetes_platform/go/kubernetesplatform/kubernetes_executor_config.pb.go)
  mkdir -p "$KFP_BIN" "$ARGO_BIN"

  build_kfp_protos() {
    local new=$KFP_SRC.new py=$TOOLS_DIR/kfp/pyvenv
    rm -rf "$new" && mkdir -p "$new" "$TOOLS_DIR/kfp/bin" &&
      module_copy github.com/kubeflow/pipelines/api "$KFP_API_MODULE_VERSION" "$GO/kfp/go.sum" "$new/api" &&
      module_copy github.com/kubeflow/pipelines/kubernetes_platform "$KFP_PLATFORM_MODULE_VERSION" "$GO/kfp/go.sum" \
        "$new/kubernetes_platform" || return 1
    (cd "$tmp" && GOBIN=$TOOLS_DIR/kfp/bin go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION") || return 1
    rm -rf "$py"
    if command -v uv >/dev/null; then
      uv venv -q -p python3 "$py" && uv pip install -q -p "$py/bin/python" --no-deps "${KFP_PY_PKGS[@]}"
    else
      python3 -m venv "$py" && "$py/bin/pip" install -q --no-deps "${KFP_PY_PKGS[@]}"
    fi || return 1
    "$py/bin/python" "$CLUSTER_DIR/kfp/genproto.py" "$TOOLS_DIR/kfp/bin/protoc-gen-go" "$new" &&
      rm -rf "$KFP_SRC" && mv "$new" "$KFP_SRC"
  }
  step kfp-protos "$(STAMP_EXTRA="${KFP_PY_PKGS[*]} $PROTOC_GEN_GO_VERSION $KFP_API_MODULE_VERSION $KFP_PLATFORM_MODULE_VERSION" \
    stamp_of kfp-protos "$CLUSTER_DIR/kfp/genproto.py" "$GO/kfp/go.sum")" \
    "$KFP_SRC/api/v2alpha1/go/pipelinespec" "$KFP_SRC/kubernetes_platform/go/kubernetesplatform" -- build_kfp_protos

  kfp_go_build() { # go build in the build folder, with the wrapper's go.mod/go.sum
    cp "$GO/kfp/go.mod" "$GO/kfp/go.sum" "$KFP_SRC/" && (cd "$KFP_SRC" && go build -trimpath "$@")
  }
  KFP_STAMP_FILES=("$GO/kfp/go.mod" "$GO/kfp/go.sum" "${KFP_GEN[@]/#/$KFP_SRC/}")
  # persistence agent, scheduledworkflow controller, driver, launcher: static, as upstream's
  # Dockerfile.driver/.launcher (netgo); timetzdata embeds the zone database (cron time zones)
  KFP_TAGS=netgo,osusergo,timetzdata
  build_kfp_static() {
    rm -rf "$tmp/kfp" && mkdir -p "$tmp/kfp" &&
      kfp_go_build -tags "$KFP_TAGS" -ldflags "-s -w" -o "$tmp/kfp/" "$KFP_PKG/agent/persistence" \
        "$KFP_PKG/crd/controller/scheduledworkflow" "$KFP_PKG/v2/cmd/driver" "$KFP_PKG/v2/cmd/launcher-v2" &&
      mv "$tmp/kfp/persistence" "$KFP_BIN/persistence_agent" && mv "$tmp/kfp/scheduledworkflow" "$KFP_BIN/controller" &&
      mv "$tmp/kfp/driver" "$tmp/kfp/launcher-v2" "$KFP_BIN/"
  }
  step kfp-backend "$(STAMP_EXTRA=$KFP_TAGS stamp_of kfp-backend "${KFP_STAMP_FILES[@]}")" \
    "$KFP_BIN/persistence_agent" "$KFP_BIN/controller" "$KFP_BIN/driver" "$KFP_BIN/launcher-v2" -- build_kfp_static
  # api-server: cgo (go-sqlite3), linked statically against glibc so its image is FROM scratch too
  KFP_API_TAGS=netgo,osusergo,sqlite_omit_load_extension,timetzdata
  KFP_API_LDFLAGS='-s -w -linkmode external -extldflags "-static"'
  build_kfp_apiserver() {
    CGO_ENABLED=1 kfp_go_build -tags "$KFP_API_TAGS" -ldflags "$KFP_API_LDFLAGS" -o "$KFP_BIN/apiserver.new" "$KFP_PKG/apiserver" &&
      { [ -z "$(readelf -l "$KFP_BIN/apiserver.new" | grep INTERP)" ] || { echo "apiserver is not static"; return 1; }; } &&
      mv "$KFP_BIN/apiserver.new" "$KFP_BIN/apiserver"
  }
  step kfp-apiserver "$(STAMP_EXTRA="$KFP_API_TAGS $KFP_API_LDFLAGS" stamp_of kfp-apiserver "${KFP_STAMP_FILES[@]}")" \
    "$KFP_BIN/apiserver" -- build_kfp_apiserver

  # Argo Workflows: workflow-controller and argoexec in one go build, static, version as upstream's Makefile
  ARGO_LDFLAGS="-s -w"
  for v in version=$ARGO_VERSION gitTag=$ARGO_VERSION gitCommit=$ARGO_COMMIT gitTreeState=clean buildDate=$ARGO_BUILD_DATE; do
    ARGO_LDFLAGS+=" -X github.com/argoproj/argo-workflows/v3.$v"
  done
  ARGO_SRC=$TOOLS_DIR/argo/src # build folder: go/argo's go.mod/go.sum + ./argo-workflows
  build_argo() {
    local m=github.com/argoproj/argo-workflows/v3
    mkdir -p "$ARGO_SRC" && module_copy "$m" "$ARGO_VERSION" "$GO/argo/go.sum" "$ARGO_SRC/argo-workflows" &&
      # the module zip drops symlinks; upstream's signal_linux.go is one (see go/argo/go.mod)
      ln -s signal_darwin.go "$ARGO_SRC/argo-workflows/workflow/executor/os-specific/signal_linux.go" &&
      cp "$GO/argo/go.mod" "$GO/argo/go.sum" "$ARGO_SRC/" &&
      (cd "$ARGO_SRC" && go build -trimpath -ldflags "$ARGO_LDFLAGS" -o "$ARGO_BIN/" "$m/cmd/workflow-controller" "$m/cmd/argoexec")
  }
  step argo "$(STAMP_EXTRA=$ARGO_LDFLAGS stamp_of argo "$GO/argo/go.mod" "$GO/argo/go.sum")" \
    "$ARGO_BIN/workflow-controller" "$ARGO_BIN/argoexec" "$ARGO_SRC/argo-workflows/hack" -- build_argo
fi

# --- kube-prometheus-stack's programs, each from its release module with upstream's version stamp
# (github.com/prometheus/common/version, as their .promu.yml / Makefile set it) ---
if [ "$WITH_MONITORING" = 1 ]; then
  MON_BIN=$BIN_DIR/monitoring
  mkdir -p "$MON_BIN"
  version_ldflags() { # VERSION REVISION DATE
    local p=github.com/prometheus/common/version
    echo "-s -w -X $p.Version=${1#v} -X $p.Revision=$2 -X $p.Branch=HEAD -X $p.BuildUser=symptomdx -X $p.BuildDate=$3"
  }
  mon_build() { # WRAPPER TAGS LDFLAGS PACKAGE...
    local dir=$GO/$1 tags=$2 ldflags=$3
    shift 3
    (cd "$dir" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$MON_BIN/" "$@")
  }
  # operator and config reloader: one module (its go.mod replaces pkg/apis and pkg/client with
  # its own folders, so the wrapper requires their published versions)
  PO_LDFLAGS=$(version_ldflags "$PROMETHEUS_OPERATOR_VERSION" f7f07bcdfb415aea4c87c1fb0dafe00968ad5420 20251013-13:55:31)
  step prometheus-operator "$(STAMP_EXTRA=$PO_LDFLAGS stamp_of po "$GO/prometheus-operator/go.mod" "$GO/prometheus-operator/go.sum")" \
    "$MON_BIN/operator" "$MON_BIN/prometheus-config-reloader" -- mon_build prometheus-operator "" "$PO_LDFLAGS" \
    github.com/prometheus-operator/prometheus-operator/cmd/operator \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
  # Prometheus without builtinassets: the web UI's assets are built by npm upstream and are not
  # in the module (the API, which the operator, rules and tests use, is all there)
  PROM_LDFLAGS=$(version_ldflags "$PROMETHEUS_VERSION" 7f2e7c86f800230ce13ce022cddaeba7cd2a9cc1 20251022-12:31:56)
  step prometheus "$(STAMP_EXTRA=$PROM_LDFLAGS stamp_of prometheus "$GO/prometheus/go.mod" "$GO/prometheus/go.sum")" \
    "$MON_BIN/prometheus" -- mon_build prometheus netgo "$PROM_LDFLAGS" github.com/prometheus/prometheus/cmd/prometheus
  AM_LDFLAGS=$(version_ldflags "$ALERTMANAGER_VERSION" v0.28.1 20250307-14:04:46)
  step alertmanager "$(STAMP_EXTRA=$AM_LDFLAGS stamp_of alertmanager "$GO/alertmanager/go.mod" "$GO/alertmanager/go.sum")" \
    "$MON_BIN/alertmanager" -- mon_build alertmanager netgo "$AM_LDFLAGS" github.com/prometheus/alertmanager/cmd/alertmanager
  NE_LDFLAGS=$(version_ldflags "$NODE_EXPORTER_VERSION" v1.9.1 20250401-15:14:14)
  step node-exporter "$(STAMP_EXTRA=$NE_LDFLAGS stamp_of node-exporter "$GO/node-exporter/go.mod" "$GO/node-exporter/go.sum")" \
    "$MON_BIN/node_exporter" -- mon_build node-exporter netgo "$NE_LDFLAGS" github.com/prometheus/node_exporter
fi

# --- kube-network-policies: a copy of its module with go/kube-network-policies/nfqueue-xt.patch
# applied (this kernel has no nftables `queue` expression; see that go.mod), as upstream's
# Dockerfile CGO_ENABLED=0; and knp-nftables (ours: shows or deletes the enforcer's table) ---
if [ "$WITH_NETPOL" = 1 ]; then
  command -v patch >/dev/null || bash "$REPO_ROOT/scripts/apt-deps.sh" patch
  KNP_GO=$GO/kube-network-policies
  KNP_SRC=$TOOLS_DIR/kube-network-policies/src # build folder: the wrapper's files + the patched copy
  mkdir -p "$BIN_DIR/netpol"
  build_knp() {
    rm -rf "$KNP_SRC" && mkdir -p "$KNP_SRC" &&
      module_copy sigs.k8s.io/kube-network-policies "$KNP_VERSION" "$KNP_GO/go.sum" "$KNP_SRC/kube-network-policies" &&
      patch -d "$KNP_SRC/kube-network-policies" -p1 --no-backup-if-mismatch <"$KNP_GO/nfqueue-xt.patch" &&
      cp -r "$KNP_GO/go.mod" "$KNP_GO/go.sum" "$KNP_GO/nftables" "$KNP_SRC/" &&
      (cd "$KNP_SRC" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/netpol/netpol" sigs.k8s.io/kube-network-policies/cmd &&
        go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/knp-nftables" ./nftables)
  }
  step kube-network-policies "$(stamp_of knp "$KNP_GO/go.mod" "$KNP_GO/go.sum" "$KNP_GO/nfqueue-xt.patch" "$KNP_GO/nftables/main.go")" \
    "$BIN_DIR/netpol/netpol" "$BIN_DIR/knp-nftables" -- build_knp
fi

# --- images: FROM scratch + one static binary, tagged localhost/symptomdx/... ---
# image_build TAG BINARY [USER] [CMD-JSON] [NAME-IN-IMAGE]: ENTRYPOINT is the binary; a label
# records the hash of the inputs
image_build() {
  local tag=$1 bin=$2 user=${3:-} cmd=${4:-} name=${5:-} sum cur ctx
  [ -n "$name" ] || name=$(basename "$bin")
  sum=$( { sha256sum <"$bin"; echo "$user $cmd $name"; } | sha256sum | cut -c1-32)
  cur=$(docker image inspect -f '{{index .Config.Labels "symptomdx.binary"}}' "$tag" 2>/dev/null || true)
  if [ "$cur" = "$sum" ]; then log "image $tag: up to date"; return 0; fi
  log "image $tag: building"
  ctx=$tmp/img-$name
  mkdir -p "$ctx"
  cp "$bin" "$ctx/$name"
  {
    echo "FROM scratch"
    echo "COPY $name /$name"
    echo "LABEL symptomdx.binary=$sum"
    [ -n "$user" ] && echo "USER $user"
    echo "ENTRYPOINT [\"/$name\"]"
    [ -n "$cmd" ] && echo "CMD $cmd"
  } >"$ctx/Dockerfile"
  docker build --network host -t "$tag" "$ctx" >"$ctx.log" 2>&1 || { cat "$ctx.log" >&2; die "docker build of $tag failed"; }
  BUILT=1
}
# image_tree TAG DIR [DOCKERFILE-LINES...]: FROM scratch + the small root file system in DIR
# (binaries under /bin, /tmp, CA bundle, passwd), then the given Dockerfile lines; a label records
# the hash of the tree (names, modes, contents) and the lines
image_tree() {
  local tag=$1 dir=$2 sum cur ctx
  shift 2
  sum=$( { tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c . | sha256sum; printf '%s\n' "$@"; } | sha256sum | cut -c1-32)
  cur=$(docker image inspect -f '{{index .Config.Labels "symptomdx.binary"}}' "$tag" 2>/dev/null || true)
  if [ "$cur" = "$sum" ]; then log "image $tag: up to date"; return 0; fi
  log "image $tag: building"
  ctx=$tmp/img-${tag##*/}
  rm -rf "$ctx" && mkdir -p "$ctx" && cp -a "$dir" "$ctx/rootfs"
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "LABEL symptomdx.binary=$sum"
    echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    printf '%s\n' "$@"
  } >"$ctx/Dockerfile"
  docker build --network host -t "$tag" "$ctx" >"$ctx.log" 2>&1 || { cat "$ctx.log" >&2; die "docker build of $tag failed"; }
  BUILT=1
}
# rootfs NAME FILE...: $tmp/rootfs-NAME with FILEs in /bin and what the programs expect of a base
# image: /tmp (1777; glog and the driver write there), CA bundle, passwd/group, nsswitch.conf
rootfs() {
  local r=$tmp/rootfs-$1
  shift
  rm -rf "$r" && mkdir -p "$r/bin" "$r/tmp" "$r/etc/ssl/certs" && chmod 1777 "$r/tmp" && cp "$@" "$r/bin/" &&
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/" || return 1 # the host's trust store (Debian's ca-certificates)
  printf 'root:x:0:0:root:/root:/sbin/nologin\nargo:x:8737:8737:argo:/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nargo:x:8737:\nnogroup:x:65534:\n' >"$r/etc/group"
  echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
  echo "$r"
}
if [ "$WITH_IMAGES" = 1 ]; then
  docker info >/dev/null 2>&1 || die "no Docker engine answers on /var/run/docker.sock (start one: dockerd --bridge=none --iptables=false &)"
  image_build "$PAUSE_IMAGE" "$BIN_DIR/pause"
  image_build "$COREDNS_IMAGE" "$BIN_DIR/coredns"
  image_build "$METRICS_SERVER_IMAGE" "$BIN_DIR/metrics-server" 65534
  image_build "$PROBE_IMAGE" "$BIN_DIR/probe" 65534 '["serve"]'
  if [ "$WITH_KSERVE" = 1 ]; then
    image_build "$KSERVE_CONTROLLER_IMAGE" "$BIN_DIR/kserve-manager" 65532 "" manager
    image_build "$MINIO_IMAGE" "$BIN_DIR/minio" 65534
    image_build "$KUBE_RBAC_PROXY_IMAGE" "$BIN_DIR/kube-rbac-proxy" 65532
    for n in "${CM_NAMES[@]}"; do # user 1000, as upstream's images
      r=$(rootfs "cert-manager-$n" "$BIN_DIR/cert-manager/$n")
      image_tree "$IMG_PREFIX/cert-manager-$n:$CERT_MANAGER_VERSION" "$r" "USER 1000" "ENTRYPOINT [\"/bin/$n\"]"
    done
  fi
  if [ "$WITH_MONITORING" = 1 ]; then
    # as upstream's images: the program in /bin (the operator runs the reloader as
    # /bin/prometheus-config-reloader), user nobody, Prometheus' data in /prometheus
    for p in operator:$PROMETHEUS_OPERATOR_IMAGE prometheus-config-reloader:$PROMETHEUS_CONFIG_RELOADER_IMAGE \
      alertmanager:$ALERTMANAGER_IMAGE node_exporter:$NODE_EXPORTER_IMAGE; do
      r=$(rootfs "${p%%:*}" "$MON_BIN/${p%%:*}")
      image_tree "${p#*:}" "$r" "USER 65534" "ENTRYPOINT [\"/bin/${p%%:*}\"]"
    done
    r=$(rootfs prometheus "$MON_BIN/prometheus")
    mkdir -p "$r/prometheus" && chown 65534:65534 "$r/prometheus"
    image_tree "$PROMETHEUS_IMAGE" "$r" "USER 65534" "WORKDIR /prometheus" 'ENTRYPOINT ["/bin/prometheus"]'
  fi
  if [ "$WITH_NETPOL" = 1 ]; then
    # as upstream's image: /bin/netpol and no ENTRYPOINT (install.yaml's args start with it);
    # STOPSIGNAL SIGINT: the enforcer removes its nftables table only on SIGINT (it does not
    # catch SIGTERM), so a deleted pod cleans up after itself
    r=$(rootfs netpol "$BIN_DIR/netpol/netpol")
    image_tree "$KNP_IMAGE" "$r" "STOPSIGNAL SIGINT" 'CMD ["/bin/netpol"]'
  fi
  if [ "$WITH_KFP" = 1 ]; then
    # api-server: upstream's /config (config.json; sample_config.json without samples, which
    # upstream compiles from its repository's Python sources at image build time)
    r=$(rootfs kfp-api-server "$KFP_BIN/apiserver")
    cfg=$GOMODCACHE/github.com/kubeflow/pipelines@$KFP_MODULE_VERSION/backend/src/apiserver/config
    [ -d "$cfg" ] || (cd "$KFP_SRC" && go mod download github.com/kubeflow/pipelines)
    mkdir -p "$r/config" && install -m 644 "$cfg/config.json" "$r/config/"
    echo '{"loadSamplesOnRestart": false, "pipelines": []}' >"$r/config/sample_config.json"
    image_tree "$KFP_API_SERVER_IMAGE" "$r" "ENV COMMIT_SHA=$KFP_COMMIT TAG_NAME=$KFP_VERSION" "USER 65534" \
      "WORKDIR /bin" "EXPOSE 8888 8887" 'ENTRYPOINT ["/bin/apiserver"]' \
      'CMD ["--config=/config", "--sampleconfig=/config/sample_config.json", "-logtostderr=true"]'
    # persistence agent, scheduledworkflow: upstream's shell CMD with its ENV defaults, as exec form
    r=$(rootfs kfp-pa "$KFP_BIN/persistence_agent")
    image_tree "$KFP_PERSISTENCEAGENT_IMAGE" "$r" "USER 65534" "WORKDIR /bin" 'ENTRYPOINT ["/bin/persistence_agent"]' \
      'CMD ["--logtostderr=true", "--namespace=", "--ttlSecondsAfterWorkflowFinish=86400", "--numWorker=2", "--executionType=Workflow", "--logLevel=info"]'
    r=$(rootfs kfp-swf "$KFP_BIN/controller")
    image_tree "$KFP_SCHEDULEDWORKFLOW_IMAGE" "$r" "USER 65534" "WORKDIR /bin" \
      'ENTRYPOINT ["/bin/controller"]' 'CMD ["--logtostderr=true", "--namespace=", "--logLevel=info"]'
    # driver and launcher: the compiled workflows call them by name ("driver", "launcher-v2"
    # --copy /kfp-launcher/launch), found in /bin through PATH
    r=$(rootfs kfp-driver "$KFP_BIN/driver")
    image_tree "$KFP_DRIVER_IMAGE" "$r" "USER 65534" "WORKDIR /bin" 'ENTRYPOINT ["/bin/driver"]'
    r=$(rootfs kfp-launcher "$KFP_BIN/launcher-v2")
    image_tree "$KFP_LAUNCHER_IMAGE" "$r" "USER 65534" "WORKDIR /bin" 'ENTRYPOINT ["/bin/launcher-v2"]'
    # Argo: as upstream's distroless images (ssh_known_hosts, nsswitch.conf, mime.types for argoexec);
    # the controller runs as 8737, argoexec as root (upstream sets no user), pods may override
    argo_src=$ARGO_SRC/argo-workflows
    r=$(rootfs argo-controller "$ARGO_BIN/workflow-controller")
    mkdir -p "$r/etc/ssh" && cp "$argo_src/hack/ssh_known_hosts" "$r/etc/ssh/"
    image_tree "$ARGO_CONTROLLER_IMAGE" "$r" "USER 8737" 'ENTRYPOINT ["/bin/workflow-controller"]'
    r=$(rootfs argoexec "$ARGO_BIN/argoexec")
    mkdir -p "$r/etc/ssh" && cp "$argo_src/hack/ssh_known_hosts" "$r/etc/ssh/"
    [ ! -f /etc/mime.types ] || cp /etc/mime.types "$r/etc/"
    image_tree "$ARGOEXEC_IMAGE" "$r" 'ENTRYPOINT ["/bin/argoexec"]'
  fi
fi

secs=$(($(date +%s) - T0))
if [ "$BUILT" = 1 ]; then what="something was (re)built"; else what="warm: everything up to date"; fi
log "build.sh done in ${secs}s ($what)"
