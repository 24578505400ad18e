"""Compile the pipeline to its IR YAML, naming the components image the manifests deploy.

    python -m pipelines.compile                          # pipelines/disease_training_pipeline.yaml
    python -m pipelines.compile --image IMAGE out.yaml   # a copy that runs another image
    python -m pipelines.compile --registry R --tag T     # what `make images` runs: point
                                                         # manifests/base/kustomization.yaml at
                                                         # R/<name>:T, then compile

The image references live in one place, the ``images:`` list of
manifests/base/kustomization.yaml.
The committed IR names the same components image, so what an operator uploads to Kubeflow and
what they apply with ``kubectl apply -k`` name images that ``make images`` built.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "disease_training_pipeline.yaml"
KUSTOMIZATION = HERE.parent / "manifests" / "base" / "kustomization.yaml"
IMAGE_ENV = "SYMPTOM_DX_COMPONENTS_IMAGE"


def kustomization_images(path: Path = KUSTOMIZATION) -> dict[str, str]:
    """``{"components": "REGISTRY/components:TAG", ...}`` as the kustomization deploys them."""
    images = yaml.safe_load(path.read_text())["images"]
    refs = {}
    for image in images:
        name = image.get("newName", image["name"])
        refs[image["name"].rsplit("/", 1)[-1]] = f"{name}:{image['newTag']}"
    return refs


def image_targets(path: Path = KUSTOMIZATION) -> dict[str, str]:
    """Every Dockerfile target and its reference: the kustomization's images, and the storage
    initializer (KServe's configuration names it, not the manifests) beside the serving one."""
    refs = kustomization_images(path)
    serving_name, tag = refs["serving"].rsplit(":", 1)
    return {
        **refs,
        "storage-initializer": f"{serving_name.rsplit('/', 1)[0]}/storage-initializer:{tag}",
    }


def set_kustomization_images(registry: str, tag: str, path: Path = KUSTOMIZATION) -> None:
    """Point every entry of the kustomization's ``images:`` at ``registry/<name>:tag``.

    A text edit of that one list, so the file's comments stay (a YAML dump would drop them).
    """
    text = path.read_text()
    block = re.search(r"^images:\n((?:[ #].*\n)+)", text, re.MULTILINE)
    if block is None:
        raise SystemExit(f"error: {path} has no images: list")
    entries = []
    for image in yaml.safe_load(text)["images"]:
        entries.append(f"  - name: {image['name']}")
        new_name = f"{registry.rstrip('/')}/{image['name'].rsplit('/', 1)[-1]}"
        if new_name != image["name"]:
            entries.append(f"    newName: {new_name}")
        entries.append(f"    newTag: {tag}")
    path.write_text(text[: block.start(1)] + "\n".join(entries) + "\n" + text[block.end(1) :])


def compile_pipeline(path: Path = PACKAGE, image: str | None = None) -> Path:
    """Compile to ``path`` with ``image`` (default: the kustomization's components image)."""
    image = image or kustomization_images()["components"]
    os.environ[IMAGE_ENV] = image  # components read it when they are defined (import time)
    import components

    if image != components.IMAGE:  # defined earlier in this process with another image
        for name in [m for m in sys.modules if m.startswith(("components", "pipelines.disease"))]:
            importlib.reload(sys.modules[name])
    from kfp import compiler

    from pipelines.disease_training_pipeline import disease_training_pipeline

    compiler.Compiler().compile(disease_training_pipeline, package_path=str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.compile", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("output", nargs="?", type=Path, default=PACKAGE)
    parser.add_argument("--image", help="components image (default: the kustomization's)")
    parser.add_argument("--registry", help="set the kustomization's images to REGISTRY/<name>")
    parser.add_argument("--tag", help="with --registry: the images' tag")
    parser.add_argument(
        "--list-images", action="store_true", help="print each image target and its reference"
    )
    args = parser.parse_args(argv)
    if bool(args.registry) != bool(args.tag):
        parser.error("--registry and --tag go together")
    if args.list_images:
        for target, ref in image_targets().items():
            print(target, ref)
        return 0
    if args.registry:
        set_kustomization_images(args.registry, args.tag)
        print(f"images: {', '.join(kustomization_images().values())}")
    print(f"compiled {compile_pipeline(args.output, args.image)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
