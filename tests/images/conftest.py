"""The built images (``make images`` / ``scripts/images.sh``) and the rendered manifests that
say how the cluster runs them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from pods import named, remove_leftovers
from testkit import REPO

from operations.deploy import TEMPLATE_KEY
from pipelines.compile import image_targets

REPORT = REPO / "test-artifacts" / "images.json"


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """``{target: reference}`` of every image, all present in the local Docker engine."""
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True).returncode
    ):
        pytest.fail("no Docker engine answers: run `make test-images` (it starts Debian's)")
    refs = image_targets()
    missing = [
        ref
        for ref in refs.values()
        if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode
    ]
    if missing:
        pytest.fail(f"images not built: {', '.join(missing)}; run `make images` (or make test)")
    remove_leftovers()
    yield refs
    remove_leftovers()


@pytest.fixture(scope="session")
def report():
    """Figures the images issue asks for (sizes, cold start), kept in test-artifacts/."""
    figures: dict = {}
    yield figures
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def serving_pod(rendered_manifests) -> tuple[dict, dict]:
    """The predictor's pod as KServe builds it in raw deployment mode from what
    `symptom-dx deploy` applies (the template with a release): the ServingRuntime's container,
    ``{{.Name}}`` filled in, the InferenceService's resources over the runtime's and its args
    after the runtime's. The checksum is left out: the tests load several models."""
    runtime = named(rendered_manifests, "ServingRuntime", "symptom-dx-runtime")
    template = named(rendered_manifests, "ConfigMap", "symptom-dx-predictor")["data"]
    isvc = yaml.safe_load(template[TEMPLATE_KEY])
    [container] = runtime["spec"]["containers"]
    container = json.loads(json.dumps(container).replace("{{.Name}}", isvc["metadata"]["name"]))
    model = isvc["spec"]["predictor"]["model"]
    if model.get("resources"):
        container["resources"] = model["resources"]
    container["args"] = [*container.get("args", []), *model.get("args", [])]
    return {}, container
