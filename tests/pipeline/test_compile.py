"""The committed IR YAML is what the current source compiles to; it runs from the components
image the manifests deploy, and `make images`' reference rewrite keeps the two together."""

import shutil

import yaml

from pipelines.compile import (
    KUSTOMIZATION,
    PACKAGE,
    compile_pipeline,
    kustomization_images,
    set_kustomization_images,
)


def test_committed_ir_matches_a_fresh_compile(tmp_path):
    fresh = compile_pipeline(tmp_path / "fresh.yaml").read_text()
    assert PACKAGE.read_text() == fresh, "pipeline changed: run `make compile` and commit the YAML"


def test_ir_has_no_pip_step_and_attaches_secrets():
    docs = list(yaml.safe_load_all(PACKAGE.read_text()))
    spec, platform = docs[0], docs[1]
    assert spec["pipelineInfo"]["name"] == "disease-training"
    executors = spec["deploymentSpec"]["executors"]
    assert set(executors) == {
        "exec-ingest-dataset",
        "exec-split-dataset",
        "exec-train-candidates",
        "exec-evaluate-candidates",
        "exec-register-model",
        "exec-deploy-model",
    }
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == kustomization_images()["components"]
        assert "pip install" not in " ".join(container["command"])
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-ingest-dataset", "exec-register-model", "exec-deploy-model"):
        secret = k8s[name]["secretAsEnv"][0]
        assert secret["secretName"] == "model-store-credentials"
        # KFP 2.14 has no optional Secrets: with Pod Identity the keys are there, empty
        assert "optional" not in secret
        assert {e["envVar"] for e in secret["keyToEnv"]} == {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
        }
    config = k8s["exec-register-model"]["configMapAsEnv"][0]
    assert "MLFLOW_TRACKING_URI" in {e["envVar"] for e in config["keyToEnv"]}
    # no credential values anywhere in the compiled pipeline
    assert "SECRET_ACCESS_KEY:" not in PACKAGE.read_text().replace("envVar", "")


def test_each_training_default_has_one_definition():
    """symptom_dx.config.DEFAULTS is the only place a training default is written: the
    pipeline's signature and its compiled IR carry exactly those values, no component declares
    a default of its own, and no other source file assigns a literal to those names."""
    import dataclasses
    import inspect
    import re

    from testkit import REPO

    from pipelines.disease_training_pipeline import disease_training_pipeline
    from symptom_dx.config import DEFAULTS

    defaults = DEFAULTS.as_dict()
    signature = inspect.signature(disease_training_pipeline.pipeline_func)
    assert {k: signature.parameters[k].default for k in defaults} == defaults
    spec = yaml.safe_load(PACKAGE.read_text().split("\n---\n")[0])
    compiled = spec["root"]["inputDefinitions"]["parameters"]
    assert {k: compiled[k]["defaultValue"] for k in defaults} == defaults
    for name, component in spec["components"].items():
        for param, definition in (
            component.get("inputDefinitions", {}).get("parameters", {}).items()
        ):
            if param in defaults:
                assert "defaultValue" not in definition, f"{name} declares a default {param}"
    # A literal equal to the default, assigned to its name: a second definition. (`seed`
    # is every random function's generic parameter, not only the pipeline's.)
    names = "|".join(k for k in defaults if k != "seed")
    assignment = re.compile(rf"\b({names})\s*(?::\s*[\w\[\]| ]+)?\s*=\s*([^,)\s]+)")
    sources = [
        p
        for folder in ("src", "components", "pipelines", "serving", "ui", "bench")
        for p in (REPO / folder).rglob("*.py")
        if p.name != "config.py"
    ]
    repeated = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        for m in assignment.finditer(line)
        if m.group(2).strip("\"'") == str(defaults[m.group(1)])
    ]
    assert repeated == [], "a training default is written outside symptom_dx/config.py"
    assert dataclasses.is_dataclass(DEFAULTS) and DEFAULTS.__dataclass_params__.frozen


def test_images_rewrite_points_manifests_and_ir_at_one_registry(tmp_path):
    kustomization = tmp_path / "kustomization.yaml"
    shutil.copy(KUSTOMIZATION, kustomization)
    before = kustomization.read_text()
    set_kustomization_images("registry.example:5000/team", "1.2.3", kustomization)
    refs = kustomization_images(kustomization)
    assert refs == {
        "components": "registry.example:5000/team/components:1.2.3",
        "serving": "registry.example:5000/team/serving:1.2.3",
        "ui": "registry.example:5000/team/ui:1.2.3",
    }
    # only the images: list changed; every comment stayed
    after = kustomization.read_text()
    assert [line for line in after.splitlines() if line.lstrip().startswith("#")] == [
        line for line in before.splitlines() if line.lstrip().startswith("#")
    ]
    ir = compile_pipeline(tmp_path / "ir.yaml", refs["components"]).read_text()
    assert ir.count("image: registry.example:5000/team/components:1.2.3") == len(
        yaml.safe_load(ir.split("\n---\n")[0])["deploymentSpec"]["executors"]
    )
    # back to the committed references: the default compile is the committed file again
    assert compile_pipeline(tmp_path / "again.yaml").read_text() == PACKAGE.read_text()
