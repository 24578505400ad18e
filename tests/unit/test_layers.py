"""Imports run one way: the domain package imports none of the adapters, the servers import
nothing of the local stack or of operations, and the local stack is what `make run` and the tests
start, never what an image runs. Every import counts, also the ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "symptom_dx": ROOT / "src" / "symptom_dx",
    "serving": ROOT / "serving",
    "ui": ROOT / "ui",
    "components": ROOT / "components",
    "pipelines": ROOT / "pipelines",
    "operations": ROOT / "operations",
}
# What each package may import of the project's own, beside itself.
ALLOWED = {
    "symptom_dx": set(),
    "serving": {"symptom_dx"},
    "ui": {"symptom_dx"},
    "components": {"symptom_dx", "operations"},  # the deploy step runs operations.deploy
    "operations": {"symptom_dx", "pipelines"},  # the command uploads and runs the pipeline
    "pipelines": {"symptom_dx", "components", "serving", "ui"},  # make run starts the servers
}


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names} & PACKAGES.keys()


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_run_one_way(package: str):
    wrong = {
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}"
        for path in PACKAGES[package].rglob("*.py")
        if (bad := _project_imports(path) - ALLOWED[package] - {package})
    }
    assert not wrong, sorted(wrong)
