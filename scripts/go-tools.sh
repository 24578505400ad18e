#!/usr/bin/env bash
# Builds the Go tools the checks use from their release modules into .tools/bin (module and
# build caches in the user's cache folder, shared with scripts/cluster/, so a fresh clone
# reuses them). Prints the folder. Idempotent.
#   actionlint  lints .github/workflows (its PyPI wrapper only ships an sdist that downloads
#               the binary from GitHub, which is out of reach here)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$PWD/.tools/bin
declare -A TOOLS=([actionlint]=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)
source scripts/cluster/lib.sh # GOMODCACHE, GOCACHE: one cache for every Go build of ours
export GOBIN=$dest GOFLAGS="-trimpath -modcacherw"
for tool in "${!TOOLS[@]}"; do
  stamp="$dest/.$tool-${TOOLS[$tool]##*@}"
  [ -x "$dest/$tool" ] && [ -f "$stamp" ] && continue
  command -v go >/dev/null || { echo "go-tools: Go is not on PATH (needed to build $tool)" >&2; exit 1; }
  go install "${TOOLS[$tool]}"
  touch "$stamp"
done
echo "$dest"
