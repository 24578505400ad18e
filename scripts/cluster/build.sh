#!/usr/bin/env bash
# Builds the cluster's binaries from upstream release modules (Go module proxy) into
# .tools/cluster/bin, and the cluster's images into the local Docker engine.
# Idempotent: a step whose inputs (go.mod/go.sum/sources/flags/Go version) are unchanged is
# skipped, so a warm run takes seconds.
# Usage: build.sh [--no-images] [--with-kserve]   (--with-kserve adds KServe's manager and MinIO)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WITH_IMAGES=1
WITH_KSERVE=0
for a in "$@"; do
  case $a in
    --no-images) WITH_IMAGES=0 ;;
    --with-kserve) WITH_KSERVE=1 ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "unknown argument: $a" ;;
  esac
done

command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
# gcc/libc6-dev for the static pause binary; docker.io for image builds (its dockerd must be
# running: this script does not start it)
bash "$REPO_ROOT/scripts/apt-deps.sh" gcc libc6-dev docker.io
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
  # MinIO's documented source install; its go.mod has no replace directives, so plain go install
  MINIO_LDFLAGS="-s -w" # version stays DEVELOPMENT.GOGET, as with the documented `go install`
  build_minio() {
    mkdir -p "$tmp/gobin" && GOBIN=$tmp/gobin go install -trimpath -ldflags "$MINIO_LDFLAGS" "github.com/minio/minio@$MINIO_VERSION" &&
      mv "$tmp/gobin/minio" "$BIN_DIR/minio"
  }
  step minio "$(STAMP_EXTRA="$MINIO_VERSION $MINIO_LDFLAGS" stamp_of minio /dev/null)" "$BIN_DIR/minio" -- build_minio
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
if [ "$WITH_IMAGES" = 1 ]; then
  docker info >/dev/null 2>&1 || die "no Docker engine answers on /var/run/docker.sock (start one: dockerd --bridge=none --iptables=false &)"
  image_build "$PAUSE_IMAGE" "$BIN_DIR/pause"
  image_build "$COREDNS_IMAGE" "$BIN_DIR/coredns"
  image_build "$METRICS_SERVER_IMAGE" "$BIN_DIR/metrics-server" 65534
  image_build "$PROBE_IMAGE" "$BIN_DIR/probe" 65534 '["serve"]'
  if [ "$WITH_KSERVE" = 1 ]; then
    image_build "$KSERVE_CONTROLLER_IMAGE" "$BIN_DIR/kserve-manager" 65532 "" manager
    image_build "$MINIO_IMAGE" "$BIN_DIR/minio" 65534
  fi
fi

secs=$(($(date +%s) - T0))
if [ "$BUILT" = 1 ]; then what="something was (re)built"; else what="warm: everything up to date"; fi
log "build.sh done in ${secs}s ($what)"
