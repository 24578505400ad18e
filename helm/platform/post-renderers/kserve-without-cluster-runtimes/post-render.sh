#!/bin/sh
# Helm post-renderer for the kserve chart (v0.16.0): reads the rendered manifests on stdin and
# writes them to stdout without the documents of kind ClusterServingRuntime and
# ClusterStorageContainer; every other document is passed through byte for byte.
#
# Why: the chart always renders 11 ClusterServingRuntimes and the ClusterStorageContainer
# "default", and these go through failurePolicy: Fail webhooks served by the controller the
# same install is still starting, so a first install fails with "connection refused". The
# platform uses none of those runtimes (the application brings its own ServingRuntime), and
# without a ClusterStorageContainer KServe takes the storage initializer from the chart's
# inferenceservice-config (kserve.storage.image/tag).
#
# Helm 4: `helm plugin install <this folder>`, then `--post-renderer kserve-without-cluster-runtimes`.
# Helm 3 and terraform's helm provider: `--post-renderer <path of this file>`.
# POSIX sh and awk only (no yq, no python).
set -eu
if [ "$#" -gt 0 ]; then
  echo "kserve-without-cluster-runtimes: takes no arguments (manifests on stdin)" >&2
  exit 2
fi
exec awk '
  function flush() {
    if (!drop) printf "%s", doc
    doc = ""; drop = 0; seen_kind = 0
  }
  # A document starts at a "---" line (helm puts one before every template file and
  # the templates separate their documents the same way).
  /^---([ \t].*)?$/ { flush() }
  # The first top-level kind of the document decides; nested "kind:" keys are indented.
  !seen_kind && /^kind:/ {
    seen_kind = 1
    kind = $0
    sub(/^kind:[ \t]*/, "", kind)
    sub(/[ \t]*(#.*)?$/, "", kind)
    gsub(/["\047]/, "", kind)
    if (kind == "ClusterServingRuntime" || kind == "ClusterStorageContainer") drop = 1
  }
  { doc = doc $0 "\n" }
  END { flush() }
'
