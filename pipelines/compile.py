"""Compile the pipeline to IR YAML.

    python pipelines/compile.py                                   # the committed YAML
    python pipelines/compile.py --image REGISTRY/components:TAG my-pipeline.yaml

The committed YAML names the project's published components image; pass ``--image`` to compile
a copy that runs your own build of ``components/Dockerfile``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "disease_training_pipeline.yaml"


def compile_pipeline(path: Path = PACKAGE) -> Path:
    sys.path.insert(0, str(HERE.parent))
    from kfp import compiler

    from pipelines.disease_training_pipeline import disease_training_pipeline

    compiler.Compiler().compile(disease_training_pipeline, package_path=str(path))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=PACKAGE)
    parser.add_argument("--image", help="components image (default: the published one)")
    args = parser.parse_args()
    if args.image:
        os.environ["SYMPTOM_DX_COMPONENTS_IMAGE"] = args.image  # read when components import
    print(f"compiled {compile_pipeline(args.output)}")
