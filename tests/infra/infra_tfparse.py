"""Small helpers over python-hcl2 (8.x) output.

python-hcl2 8 keeps string literals quoted (``'"abc"'``), block labels quoted
(``'"vpc"'``) and wraps expressions as ``'${...}'``; blocks carry an
``__is_block__`` marker. These helpers normalise that for the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"


def unq(value: Any) -> Any:
    """Strip the quotes python-hcl2 keeps around string literals and labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def expr(value: Any) -> str:
    """Return the bare expression text of a ``${...}`` value ('' otherwise)."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return ""


@cache
def parse(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def tf_files(root: Path = TERRAFORM_DIR) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


def tf_dirs(root: Path = TERRAFORM_DIR) -> list[Path]:
    return sorted({p.parent for p in tf_files(root)})


def blocks(path: Path, kind: str) -> Iterator[tuple[str, dict]]:
    """Yield (label, body) for single-label blocks: variable, output, module."""
    for entry in parse(path).get(kind, []):
        for label, body in entry.items():
            yield unq(label), body


def resources(path: Path, kind: str = "resource") -> Iterator[tuple[str, str, dict]]:
    """Yield (type, name, body) for resource / data blocks."""
    for entry in parse(path).get(kind, []):
        for rtype, named in entry.items():
            for name, body in named.items():
                yield unq(rtype), unq(name), body


def dir_blocks(directory: Path, kind: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted(directory.glob("*.tf")):
        for label, body in blocks(path, kind):
            found[label] = body
    return found


def dir_resources(directory: Path, kind: str = "resource") -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for path in sorted(directory.glob("*.tf")):
        for rtype, name, body in resources(path, kind):
            found[(rtype, name)] = body
    return found


def dir_locals(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse(path).get("locals", []):
            merged.update({k: v for k, v in entry.items() if k != "__is_block__"})
    return merged


def deep_unq(value: Any) -> Any:
    """Recursively unquote literals in a parsed HCL value."""
    if isinstance(value, dict):
        return {unq(k): deep_unq(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [deep_unq(v) for v in value]
    return unq(value)
