"""Compile the pipeline to IR YAML: `python pipelines/compile.py [output.yaml]`."""

from __future__ import annotations

import sys
from pathlib import Path

from kfp import compiler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipelines.disease_training_pipeline import disease_training_pipeline  # noqa: E402

PACKAGE = HERE / "disease_training_pipeline.yaml"


def compile_pipeline(path: Path = PACKAGE) -> Path:
    compiler.Compiler().compile(disease_training_pipeline, package_path=str(path))
    return path


if __name__ == "__main__":
    out = compile_pipeline(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
    print(f"compiled {out}")
