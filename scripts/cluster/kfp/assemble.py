"""Assembles Kubeflow Pipelines' own kustomize manifests for an offline install.

Upstream's env/platform-agnostic pulls Argo Workflows' manifests from GitHub at install time.
Here they come from the Argo module the cluster build downloads: the KFP tree and Argo's
manifests are copied into OUT (kustomize needs relative paths), the GitHub references are
pointed at the copy, and two kustomizations are written on top, each with its components
(ours: without-cache for every install, local for this cluster's images and sizes):

    OUT/cluster-scoped/   upstream's cluster-scoped-resources (CRDs, cluster roles)
    OUT/                  upstream's env/platform-agnostic (the kubeflow namespace)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path

ARGO_URL = re.compile(r"https://github\.com/argoproj/argo-workflows/manifests/([^?\s]+)\?ref=\S+")


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, copy_function=shutil.copy)  # module files are read-only
    for folder, _, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder, name), 0o644)


def _kustomization(resource: str, components: list[str]) -> str:
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization"]
    lines += ["resources:", f"  - {resource}", "components:"]
    lines += [f"  - {c}" for c in components]
    return "\n".join(lines) + "\n"


def assemble(
    kfp: Path, argo: Path, out: Path, components: list[Path], scoped_components: list[Path]
) -> None:
    if out.exists():
        shutil.rmtree(out)
    _copy(kfp / "manifests" / "kustomize", out / "upstream")
    _copy(argo / "manifests", out / "argo")
    for path in (out / "upstream").rglob("kustomization.yaml"):
        text = path.read_text()
        if ARGO_URL.search(text):
            base = os.path.relpath(out / "argo", path.parent)
            path.write_text(ARGO_URL.sub(rf"{base}/\1", text))
    for component in {*components, *scoped_components}:
        _copy(component, out / "components" / component.name)
    (out / "kustomization.yaml").write_text(
        _kustomization(
            "upstream/env/platform-agnostic", [f"components/{c.name}" for c in components]
        )
    )
    scoped = out / "cluster-scoped"
    scoped.mkdir()
    (scoped / "kustomization.yaml").write_text(
        _kustomization(
            "../upstream/cluster-scoped-resources",
            [f"../components/{c.name}" for c in scoped_components],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kfp_module", type=Path)
    parser.add_argument("argo_module", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--component", type=Path, action="append", default=[])
    parser.add_argument("--cluster-scoped-component", type=Path, action="append", default=[])
    args = parser.parse_args()
    assemble(
        args.kfp_module, args.argo_module, args.out, args.component, args.cluster_scoped_component
    )


if __name__ == "__main__":
    main()
