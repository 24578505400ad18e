#!/usr/bin/env bash
# Installs Kubeflow Pipelines standalone: upstream's kustomize manifests at a release tag
# (cluster-scoped-resources, then env/platform-agnostic), with the components beside this
# script (without the cache server and its deployer). Run by terraform (../kfp.tf) and by
# helm/platform/README.md's step 7; the local cluster adds the same components to the same
# manifests (scripts/cluster/kfp.sh).
# Usage: install.sh VERSION   (kubectl >= 1.14 on the target cluster; fetches from github.com)
set -euo pipefail
version=${1:?usage: install.sh VERSION}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/." "$work/" # kustomize loads components only from below the kustomization
upstream=github.com/kubeflow/pipelines/manifests/kustomize
mkdir "$work/cluster-scoped" "$work/namespaced"
printf 'resources:\n- %s\ncomponents:\n- ../without-cache-cluster-scoped\n' \
  "$upstream/cluster-scoped-resources?ref=$version" >"$work/cluster-scoped/kustomization.yaml"
printf 'resources:\n- %s\ncomponents:\n- ../without-cache\n' \
  "$upstream/env/platform-agnostic?ref=$version" >"$work/namespaced/kustomization.yaml"
kubectl apply -k "$work/cluster-scoped"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "$work/namespaced"
kubectl -n kubeflow wait --for=condition=Available --timeout=900s deployment --all
