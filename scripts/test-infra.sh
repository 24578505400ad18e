#!/usr/bin/env bash
# Offline checks of the infrastructure code: terraform fmt, checkov over
# terraform/ (0 failed checks; skips only as inline #checkov:skip=ID:reason),
# and the HCL/values structure tests under tests/infra.
# Runs from the repository root; needs no AWS account, cluster or network
# (except PyPI the first time, to build the checkov venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHECKOV_VERSION="3.3.30"
CHECKOV_VENV=".venv-checkov"
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
python3 - "${CHECKOV_REPORT}" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    data = json.load(handle)
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = parsing_errors = 0
for report in reports:
    summary = report.get("summary", {})
    passed += summary.get("passed", 0)
    failed += summary.get("failed", 0)
    skipped += summary.get("skipped", 0)
    parsing_errors += summary.get("parsing_errors", 0)
    for check in report.get("results", {}).get("failed_checks", []):
        print(f"    FAILED {check['check_id']} {check['resource']} {check['file_path']}:{check['file_line_range']}")
    for check in report.get("results", {}).get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        print(f"    skipped {check['check_id']} {check['resource']}: {reason}")
print(
    f"    checkov terraform: passed={passed} failed={failed} skipped={skipped}"
    f" parsing_errors={parsing_errors}"
)
sys.exit(1 if failed or parsing_errors or not passed else 0)
PY
echo "    checkov: ok"

echo "==> pytest tests/infra"
PYTHON=".venv/bin/python"
if [[ ! -x "${PYTHON}" ]]; then
  PYTHON="python3"
fi
"${PYTHON}" -m pytest tests/infra -q

echo "==> infra checks passed: terraform fmt, checkov (0 failed), tests/infra"
