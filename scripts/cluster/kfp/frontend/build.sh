#!/usr/bin/env bash
# Builds Kubeflow Pipelines' dashboard (ml-pipeline-ui) image from the 2.14.3 release's source,
# the steps upstream's frontend/Dockerfile runs, into the local Docker engine:
#   localhost/symptomdx/kfp-frontend:2.14.3   (stands in for ghcr.io/kubeflow/kfp-frontend:2.14.3)
# The source is the Go module github.com/kubeflow/pipelines at the 2.14.3 commit (from the Go
# module cache, downloaded with `go mod download` if missing); its frontend/ is copied to a
# writable build folder outside the repo, where npm installs and builds:
#   $KFP_FRONTEND_WORK (default ~/.cache/symptom-dx/kfp-frontend)
#     frontend/            the copy: node_modules, build/ (static app), server/dist (UI server)
#     server-prod/         the UI server's production node_modules (npm ci --omit=dev)
#     context/             the docker build context (hard links): client/, server/
#     stamps/, logs/
#   npm's cache: $NPM_CACHE (default ~/.cache/symptom-dx/npm)
# Idempotent: when the image carries the label with the inputs' hash (source, this folder's
# Dockerfile, node version) nothing runs; otherwise each step runs only when its inputs changed
# (stamp files hold their hashes). Measured (2 busy cores): cold, empty npm cache, ~5 min (npm ci
# 105 s, react build 137 s; 12 min under heavier load); warm < 1 s; image only (build folder
# kept) 14 s. Then check the image with smoke.sh (beside this file).
# Usage: scripts/cluster/kfp/frontend/build.sh [--load]
#   --load  also import the image into the cluster's containerd (scripts/cluster/load-image.sh)
# Heavy steps run under `nice -n 19`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
load=0
case "${1:-}" in
  "") ;;
  --load) load=1 ;;
  *) echo "usage: $0 [--load]" >&2; exit 2 ;;
esac

KFP_VERSION=2.14.3
KFP_MODULE=github.com/kubeflow/pipelines
KFP_PSEUDO=v0.0.0-20250902140602-fc3214d4b4d3
IMAGE=${KFP_FRONTEND_IMAGE:-localhost/symptomdx/kfp-frontend:$KFP_VERSION}
LABEL=org.symptomdx.inputs-sha256
WORK=${KFP_FRONTEND_WORK:-$HOME/.cache/symptom-dx/kfp-frontend}
NPM_CACHE=${NPM_CACHE:-$HOME/.cache/symptom-dx/npm}
GOMODCACHE=${GOMODCACHE:-$HOME/.cache/symptom-dx/go/mod}
NICE=(nice -n 19)

log() { echo "kfp-frontend: $*"; }
die() { echo "kfp-frontend: $*" >&2; exit 1; }
t_total=$SECONDS
step_start=0
begin() { step_start=$SECONDS; log "$1 ..."; }
done_() { log "$1 done in $((SECONDS - step_start)) s"; }

# Runs a command with its output in logs/NAME.log; on failure shows the log's tail.
run_logged() { # NAME CMD...
  local name=$1; shift
  if ! "$@" >"$WORK/logs/$name.log" 2>&1; then
    echo "kfp-frontend: step '$name' failed ($*); last lines of $WORK/logs/$name.log:" >&2
    tail -40 "$WORK/logs/$name.log" >&2
    exit 1
  fi
}
stamp_ok() { [ -f "$WORK/stamps/$1" ] && [ "$(cat "$WORK/stamps/$1")" = "$2" ]; }
stamp_set() { echo "$2" >"$WORK/stamps/$1"; }
hash_files() { sha256sum "$@" | sha256sum | cut -c1-64; }

command -v node >/dev/null || die "node not found (the build needs Node >= 20 and npm)"
command -v npm >/dev/null || die "npm not found"
mkdir -p "$WORK/stamps" "$WORK/logs" "$NPM_CACHE"

# --- 1. The release's source ------------------------------------------------------------------
SRC=$GOMODCACHE/$KFP_MODULE@$KFP_PSEUDO
if [ ! -f "$SRC/frontend/package-lock.json" ]; then
  command -v go >/dev/null || die "$SRC missing and no go to download it"
  begin "go mod download $KFP_MODULE@$KFP_PSEUDO"
  GOMODCACHE=$GOMODCACHE GOFLAGS=-modcacherw go mod download "$KFP_MODULE@$KFP_PSEUDO"
  done_ "download"
fi
COMMIT=$(sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p' \
  "$GOMODCACHE/cache/download/$KFP_MODULE/@v/$KFP_PSEUDO.info" 2>/dev/null || true)
COMMIT=${COMMIT:-${KFP_PSEUDO##*-}}

src_hash=$(cd "$SRC" && find frontend -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-64)
node_ver=$(node -v)
# PREP names the copy's preparation below: bump it when that changes.
PREP=no-fs-placeholder
# Everything the image is made of: when the image carries this hash, there is nothing to do.
inputs=$(printf '%s\n' "$src_hash" "$PREP" "$node_ver" "$(sha256sum "$here/Dockerfile" | cut -c1-64)" \
  | sha256sum | cut -c1-64)
bash "$repo/scripts/docker-engine.sh"
image_current() {
  [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null)" = "$inputs" ]
}
finish() {
  local size
  size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
  log "$IMAGE: $((size / 1000000)) MB; total $((SECONDS - t_total)) s"
  if [ "$load" = 1 ]; then bash "$repo/scripts/cluster/load-image.sh" "$IMAGE"; fi
  exit 0
}
if image_current; then
  log "$IMAGE is up to date ($LABEL=${inputs:0:12})"
  finish
fi

FE=$WORK/frontend
if ! stamp_ok source "$src_hash $PREP"; then
  begin "copying $SRC/frontend to $FE"
  # A fresh copy of the source; installed node_modules stay (their own stamps decide).
  mkdir -p "$FE/server"
  find "$FE" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name server -exec rm -rf {} +
  find "$FE/server" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  tar -C "$SRC/frontend" -cf - . | tar -C "$FE" -xf - --no-same-owner
  chmod -R u+w "$FE"
  # The one change to the release: its devDependency "fs": "0.0.1-security" (npm's placeholder
  # for the core module's name; nothing uses it) is not served here: npm ci fails with
  #   npm error 404 Not Found - GET https://registry.npmjs.org/fs/-/fs-0.0.1-security.tgz
  # so it leaves package.json and the lock (root entry, packages and v1 dependencies).
  (cd "$FE" && node -e '
    const fs = require("fs");
    const edit = (f, fn) => { const j = JSON.parse(fs.readFileSync(f)); fn(j);
      fs.writeFileSync(f, JSON.stringify(j, null, 2) + "\n"); };
    edit("package.json", j => { delete j.devDependencies.fs; });
    edit("package-lock.json", j => { delete j.packages[""].devDependencies.fs;
      delete j.packages["node_modules/fs"]; if (j.dependencies) delete j.dependencies.fs; });')
  rm -f "$WORK/stamps/app-build" "$WORK/stamps/server-build"
  stamp_set source "$src_hash $PREP"
  done_ "copy"
fi

app_lock=$(hash_files "$FE/package.json" "$FE/package-lock.json")
srv_lock=$(hash_files "$FE/server/package.json" "$FE/server/package-lock.json")

# --- 2. npm ci --------------------------------------------------------------------------------
# No install script is needed: the lock's scripts are donation banners (core-js, ejs, jss),
# protobufjs' CLI set-up (the generated code is checked in), fsevents (macOS), and the root
# package's postinstall, which installs server/ (done below) and mock-backend/ (dev only).
# The download switches are set anyway, for whatever a future lock brings.
export PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1 CYPRESS_INSTALL_BINARY=0 \
  CHROMEDRIVER_SKIP_DOWNLOAD=true GECKODRIVER_SKIP_DOWNLOAD=true HUSKY=0 ADBLOCK=1 \
  DISABLE_OPENCOLLECTIVE=1 OPEN_SOURCE_CONTRIBUTOR=true \
  npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
NPM_CI=(npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$NPM_CACHE")

if ! stamp_ok app-deps "$app_lock $node_ver"; then
  begin "npm ci (frontend, ~1.5 GB)"
  rm -rf "$FE/node_modules"
  (cd "$FE" && run_logged npm-ci-app "${NICE[@]}" "${NPM_CI[@]}")
  rm -f "$WORK/stamps/app-build"
  stamp_set app-deps "$app_lock $node_ver"
  done_ "npm ci (frontend)"
fi
if ! stamp_ok server-deps "$srv_lock $node_ver"; then
  begin "npm ci (frontend/server)"
  rm -rf "$FE/server/node_modules"
  (cd "$FE/server" && run_logged npm-ci-server "${NICE[@]}" "${NPM_CI[@]}")
  rm -f "$WORK/stamps/server-build"
  stamp_set server-deps "$srv_lock $node_ver"
  done_ "npm ci (frontend/server)"
fi
if ! stamp_ok server-prod-deps "$srv_lock $node_ver"; then
  begin "npm ci --omit=dev (the server's runtime node_modules)"
  rm -rf "$WORK/server-prod"
  mkdir -p "$WORK/server-prod"
  cp "$SRC/frontend/server/package.json" "$SRC/frontend/server/package-lock.json" "$WORK/server-prod/"
  chmod u+w "$WORK/server-prod"/*
  (cd "$WORK/server-prod" && run_logged npm-ci-server-prod "${NICE[@]}" "${NPM_CI[@]}" --omit=dev)
  stamp_set server-prod-deps "$srv_lock $node_ver"
  done_ "npm ci --omit=dev"
fi

# --- 3. Builds (upstream: `npm run build` in frontend/ and in frontend/server) -----------------
if ! stamp_ok app-build "$src_hash $app_lock $node_ver"; then
  begin "npm run build (tailwind, eslint, react-scripts build)"
  rm -rf "$FE/build"
  (cd "$FE" && run_logged build-app "${NICE[@]}" npm run build)
  [ -f "$FE/build/index.html" ] || die "npm run build made no build/index.html"
  stamp_set app-build "$src_hash $app_lock $node_ver"
  done_ "npm run build"
fi
if ! stamp_ok server-build "$src_hash $srv_lock $node_ver"; then
  begin "npm run build (frontend/server, tsc)"
  rm -rf "$FE/server/dist"
  (cd "$FE/server" && run_logged build-server "${NICE[@]}" npm run build)
  [ -f "$FE/server/dist/server.js" ] || die "tsc made no server/dist/server.js"
  # What upstream's Dockerfile writes for the /apis/v1beta1/healthz answer.
  echo "$COMMIT" >"$FE/server/dist/COMMIT_HASH"
  date -u >"$FE/server/dist/BUILD_DATE"
  echo "$KFP_VERSION" >"$FE/server/dist/TAG_NAME"
  stamp_set server-build "$src_hash $srv_lock $node_ver"
  done_ "server build"
fi

# --- 4. The image -----------------------------------------------------------------------------
bash "$repo/scripts/base-image.sh"
begin "docker build $IMAGE"
ctx=$WORK/context
rm -rf "$ctx"
mkdir -p "$ctx/server"
cp -al "$FE/build" "$ctx/client"
cp -al "$FE/server/dist" "$ctx/server/dist"
cp -al "$WORK/server-prod/node_modules" "$ctx/server/node_modules"
cp "$FE/server/package.json" "$FE/server/package-lock.json" "$ctx/server/"
previous=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
run_logged docker-build "${NICE[@]}" docker build --network host -f "$here/Dockerfile" \
  --label "$LABEL=$inputs" --label "org.opencontainers.image.version=$KFP_VERSION" \
  --label "org.opencontainers.image.revision=$COMMIT" \
  --label "org.opencontainers.image.source=https://github.com/kubeflow/pipelines" \
  -t "$IMAGE" "$ctx"
rm -rf "$ctx"
# The image this one replaces, now untagged (kept if a container still uses it).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
done_ "docker build"
finish
