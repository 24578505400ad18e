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
    """symptom_dx.config.DEFAULTS holds every training default, each written once (the run's
    in config.py, the hyperparameters' in the candidate table, symptom_dx/candidates.py): the
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
        if p.name not in ("config.py", "candidates.py")
    ]
    repeated = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        for m in assignment.finditer(line)
        if m.group(2).strip("\"'") == str(defaults[m.group(1)])
    ]
    assert repeated == [], "a training default is written outside config.py and candidates.py"
    assert dataclasses.is_dataclass(DEFAULTS) and DEFAULTS.__dataclass_params__.frozen


def test_pipeline_and_train_component_take_each_candidate_hyperparameter():
    """KFP reads parameters from Python signatures, so the candidate table's hyperparameters
    are written by name in two: the pipeline's (typed, with the table's default, passed on to
    train) and the train component's (typed, described as in the table, no default). Each
    difference is one line saying what to write where; a candidate added to the table without
    them fails here."""
    import inspect

    from components.train.component import train_candidates
    from pipelines.disease_training_pipeline import disease_training_pipeline
    from symptom_dx.candidates import ALGORITHMS, HYPERPARAMETERS

    pipeline = inspect.signature(disease_training_pipeline.pipeline_func).parameters
    component = inspect.signature(train_candidates.python_func).parameters
    described = train_candidates.component_spec.inputs
    spec = yaml.safe_load(PACKAGE.read_text().split("\n---\n")[0])
    passed = spec["root"]["dag"]["tasks"]["train-candidates"]["inputs"]["parameters"]

    def one_line(description):  # a docstring's Args entry may wrap
        return " ".join(description.split())

    pipeline_file = "pipelines/disease_training_pipeline.py: disease_training_pipeline"
    component_file = "components/train/component.py: train_candidates"
    problems = []
    for name, h in HYPERPARAMETERS.items():
        kind = h.kind.__name__
        declared = f"`{name}: {kind} = DEFAULTS.{name},`"
        if name not in pipeline:
            problems.append(f"{pipeline_file} lacks {declared} (and `{name}={name}` to train)")
        elif (pipeline[name].annotation, pipeline[name].default) != (h.kind, h.default):
            problems.append(f"{pipeline_file} declares `{pipeline[name]}`, want {declared}")
        elif passed.get(name) != {"componentInputParameter": name}:
            problems.append(f"{pipeline_file} does not pass `{name}={name}` to train_candidates")
        if name not in component:
            problems.append(
                f"{component_file} lacks `{name}: {kind},`, its Args line `{name}:"
                f" {h.description}` and `{name}={name}` in its hyperparameters(...) call"
            )
        elif component[name].annotation is not h.kind or component[name].default is not (
            inspect.Parameter.empty
        ):
            problems.append(f"{component_file} declares `{component[name]}`, want `{name}: {kind}`")
        elif one_line(described[name].description) != h.description:
            problems.append(f"{component_file} Args line should read `{name}: {h.description}`")
    others = {"train_set", "candidates", "algorithms", "dropout_samples", "seed"}
    problems += [
        f"{component_file} takes `{name}`, which no candidate of symptom_dx/candidates.py has"
        for name in component
        if name not in others and name not in HYPERPARAMETERS
    ]
    listed = f"Comma-separated candidates: {', '.join(ALGORITHMS)}."
    if one_line(described["algorithms"].description) != listed:
        problems.append(f"{component_file} Args line should read `algorithms: {listed}`")
    assert problems == [], "\n".join(problems)


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
