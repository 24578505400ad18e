#!/usr/bin/env bash
# Offline checks of the infrastructure code: terraform fmt, checkov over
# terraform/ (0 failed checks; skips only as inline #checkov:skip=ID:reason),
# and the HCL/values structure tests under tests/infra.
# Runs from the repository root; needs no AWS account, cluster or network
# (except PyPI the first time, to build the checkov venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHECKOV_VERSION="3.3.30"
# checkov has its own venv (its pins clash with the project's), kept with the other caches
CHECKOV_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/symptom-dx/checkov-${CHECKOV_VERSION}"
UV_VERSION="0.13.8"

# Terraform: an empty CLI config silences the "no config file" warning and
# guarantees no plugin cache / credentials helpers are read.
TF_CLI_CONFIG_FILE="$(mktemp)"
export TF_CLI_CONFIG_FILE
CHECKOV_REPORT="$(mktemp)"
trap 'rm -f "$TF_CLI_CONFIG_FILE" "$CHECKOV_REPORT"' EXIT

if ! command -v terraform >/dev/null 2>&1; then
  echo "test-infra: terraform is not on PATH. Install Terraform 1.11 (HashiCorp's release; it is" >&2
  echo "test-infra: not in the Debian or PyPI registries) and run again." >&2
  exit 1
fi
echo "==> terraform fmt -check -recursive terraform"
terraform version | head -n 1
terraform fmt -check -recursive -diff terraform
echo "    fmt: ok"

echo "==> checkov ${CHECKOV_VERSION} (own venv: ${CHECKOV_VENV})"
if [[ ! -x "${CHECKOV_VENV}/bin/checkov" ]] \
  || [[ "$("${CHECKOV_VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" != "${CHECKOV_VERSION}" ]]; then
  if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet "uv==${UV_VERSION}"
  fi
  uv venv --seed --python 3.11 "${CHECKOV_VENV}"
  uv pip install --python "${CHECKOV_VENV}/bin/python" --compile-bytecode "checkov==${CHECKOV_VERSION}"
fi

# --skip-download: no Bridgecrew/Prisma platform calls, no module downloads.
# Registry modules are therefore not expanded: checkov scans our own code.
set +e
"${CHECKOV_VENV}/bin/checkov" --skip-download --compact \
  -d terraform --framework terraform --output json >"${CHECKOV_REPORT}" 2>/dev/null
checkov_rc=$?
set -e
if [[ ! -s "${CHECKOV_REPORT}" ]]; then
  echo "checkov produced no report (exit ${checkov_rc}); rerunning with console output:" >&2
  "${CHECKOV_VENV}/bin/checkov" --skip-download --compact -d terraform --framework terraform || true
  exit 1
fi
.venv/bin/python tests/infra/checkov_summary.py "${CHECKOV_REPORT}"
echo "    checkov: ok"

echo "==> pytest tests/infra"
PYTHON=".venv/bin/python"
if [[ ! -x "${PYTHON}" ]]; then
  PYTHON="python3"
fi
"${PYTHON}" -m pytest tests/infra -q

echo "==> infra checks passed: terraform fmt, checkov (0 failed), tests/infra"
