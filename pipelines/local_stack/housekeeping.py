"""Keep `make run`'s state bounded across runs."""

from __future__ import annotations

import shutil
from pathlib import Path


def keep_newest(folder: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest sub-folders of ``folder`` (by modification time,
    hidden ones such as KFP's ``.kfp_cache`` left alone); return the removed ones."""
    if not folder.is_dir():
        return []
    runs = sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = runs[keep:]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
