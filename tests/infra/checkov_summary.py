"""Summarise checkov's JSON report (scripts/test-infra.sh): every failed and skipped check, one
line each, then the counts; exits 1 on a failed check, a parsing error or nothing checked.

    python tests/infra/checkov_summary.py REPORT.json
"""

import json
import sys


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    reports = data if isinstance(data, list) else [data]
    passed = failed = skipped = parsing_errors = 0
    for report in reports:
        summary = report.get("summary", {})
        passed += summary.get("passed", 0)
        failed += summary.get("failed", 0)
        skipped += summary.get("skipped", 0)
        parsing_errors += summary.get("parsing_errors", 0)
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            where = f"{check['file_path']}:{check['file_line_range']}"
            print(f"    FAILED {check['check_id']} {check['resource']} {where}")
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            print(f"    skipped {check['check_id']} {check['resource']}: {reason}")
    print(
        f"    checkov terraform: passed={passed} failed={failed} skipped={skipped}"
        f" parsing_errors={parsing_errors}"
    )
    return 1 if failed or parsing_errors or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
