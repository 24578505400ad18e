"""No package mirror or module proxy is written in the repository: the builds take them from the
machine (its apt sources, `go env GOPROXY`, pip's and npm's own configuration), so a user behind
their own mirror changes nothing here."""

import re
import subprocess

from testkit import REPO

# Addresses of the public package mirrors and module proxies, and settings that would name one.
MIRRORS = re.compile(
    r"deb\.debian\.org|security\.debian\.org|snapshot\.debian\.org|archive\.ubuntu\.com"
    r"|proxy\.golang\.org|goproxy\.io|GOPROXY="
    r"|pypi\.org/simple|files\.pythonhosted\.org|--index-url|PIP_INDEX_URL"
    r"|registry\.npmjs\.org/?\s*$|npm config set registry"
)
BUILD_FILES = ("*.sh", "Makefile", "Dockerfile*", "*.mk", "*.py", "*.yaml", "*.toml", "*.cfg")


def test_no_build_file_names_a_mirror():
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--", *BUILD_FILES],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in filter(None, files)
        if name != "tests/unit/test_no_mirror_addresses.py"
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1)
        if MIRRORS.search(line)
    ]
    assert not found, found
