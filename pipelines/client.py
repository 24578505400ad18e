"""Upload the pipeline to a Kubeflow Pipelines API server and run it, from the command line
(``symptom-dx pipeline upload | run``), with the KFP SDK's client.

The uploaded version is compiled here with the components image the manifests deploy
(manifests/base/kustomization.yaml, which ``make images`` sets), and named after the project's
version and a hash of the compiled IR: uploading the same pipeline twice is a no-op, a changed
one gets a new version.
"""

from __future__ import annotations

import hashlib
import inspect
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.compile import PACKAGE, compile_pipeline
from symptom_dx import __version__
from symptom_dx.deadlines import poll_until
from symptom_dx.errors import SymptomDxError, first_line

PIPELINE_NAME = "disease-training"  # the pipeline's @dsl.pipeline name
EXPERIMENT = "symptom-dx"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}
STEPS_SETTLE_S = 30.0


class PipelineClientError(SymptomDxError):
    """The KFP API server could not be reached or refused a request."""


def typed_parameters(
    pairs: list[str], set_elsewhere: dict[str, str] | None = None
) -> dict[str, Any]:
    """``["nb_alpha=0.2", "deploy=false"]`` -> typed values, by the pipeline's signature;
    ``set_elsewhere`` maps the names the caller sets itself to how a user sets them instead."""
    from pipelines.disease_training_pipeline import disease_training_pipeline

    signature = inspect.signature(disease_training_pipeline.pipeline_func).parameters
    set_elsewhere = set_elsewhere or {}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if name in set_elsewhere:
            raise PipelineClientError(f"parameter {name} is set here: {set_elsewhere[name]}")
        if not sep or name not in signature:
            known = ", ".join(n for n in signature if n not in set_elsewhere)
            raise PipelineClientError(
                f"bad parameter {pair!r}: use NAME=VALUE with NAME one of {known}"
            )
        kind = signature[name].annotation
        kind = {"str": str, "int": int, "float": float, "bool": bool}.get(kind, kind)
        try:
            if kind is bool:
                if text.lower() not in {"true", "false", "1", "0"}:
                    raise ValueError(text)
                out[name] = text.lower() in {"true", "1"}
            else:
                out[name] = kind(text)
        except ValueError:
            raise PipelineClientError(
                f"parameter {name} wants {'an' if kind is int else 'a'} {kind.__name__},"
                f" got {text!r}"
            ) from None
    return out


def parameters(pairs: list[str]) -> dict[str, Any]:
    """A run's parameters for a KFP API server: typed, and naming the data to train on."""
    out = typed_parameters(pairs)
    if "data_source" not in out:
        raise PipelineClientError("data_source=... is required (a https:// or s3:// Training.csv)")
    return out


def compiled(image: str | None = None) -> tuple[Path, str]:
    """The compiled pipeline (a temporary file) and its version name."""
    path = Path(tempfile.mkdtemp(prefix="symptom-dx-pipeline-")) / f"{PIPELINE_NAME}.yaml"
    compile_pipeline(path, image)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return path, f"{__version__}-{digest}"


def connect(host: str) -> Any:
    import warnings

    import kfp

    try:
        with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later": 2.14 here
            warnings.simplefilter("ignore", FutureWarning)
            client = kfp.Client(host=host)
        client.get_kfp_healthz()
    except Exception as e:  # the SDK raises urllib3/requests/ApiException alike
        reason = first_line(e)
        raise PipelineClientError(f"no Kubeflow Pipelines API at {host}: {reason}") from None
    return client


def upload(host: str, image: str | None = None) -> tuple[str, str, str]:
    """(pipeline id, version id, version name) of the uploaded (or already there) version."""
    client = connect(host)
    path, version = compiled(image)
    try:
        pipeline_id = client.get_pipeline_id(PIPELINE_NAME)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(str(path), pipeline_name=PIPELINE_NAME)
            pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []
        found = [v for v in versions if v.display_name == version]
        if found:
            return pipeline_id, found[0].pipeline_version_id, version
        made = client.upload_pipeline_version(
            str(path), pipeline_version_name=version, pipeline_id=pipeline_id
        )
    except Exception as e:
        raise PipelineClientError(f"upload to {host} failed: {first_line(e)}") from None
    return pipeline_id, made.pipeline_version_id, version


def run(
    host: str,
    params: dict[str, Any],
    follow: bool = True,
    image: str | None = None,
    say: Callable[[str], None] = print,
    timeout_s: float = 3600,
) -> str:
    """Start a run of the uploaded version; with ``follow``, wait for its end. Returns the
    final (or current) state."""
    pipeline_id, version_id, version = upload(host, image)
    client = connect(host)
    try:
        experiment = client.create_experiment(EXPERIMENT)
        started = client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=f"{PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}",
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=params,
        )
    except Exception as e:
        raise PipelineClientError(f"cannot start a run on {host}: {first_line(e)}") from None
    say(
        f"run {started.run_id} of {PIPELINE_NAME} {version}: {host}/#/runs/details/{started.run_id}"
    )
    order = pipeline_steps()
    state, steps = "", {}
    settled_by: float | None = None  # the run ended: its steps get a little longer

    def ended() -> bool:
        nonlocal state, settled_by
        details = client.get_run(started.run_id)
        for step, step_state in step_states(details, order).items():
            if steps.get(step) != step_state:
                say(f"step {step}: {step_state}")
                steps[step] = step_state
        current = details.state or "PENDING"
        # the steps' final states may reach the API a moment after the run's: wait for them
        if current in TERMINAL and settled_by is None:
            settled_by = time.monotonic() + STEPS_SETTLE_S
        settled = all(step_state in TERMINAL for step_state in steps.values())
        if current in TERMINAL and not settled and time.monotonic() < settled_by:
            current = state or "RUNNING"
        if current != state:
            say(f"state: {current}")
            state = current
        return state in TERMINAL

    if follow:
        poll_until(ended, timeout_s, interval=5)
    return state or "PENDING"


def pipeline_steps() -> list[str]:
    """The pipeline's tasks as KFP names them, each after the tasks it depends on (the IR)."""
    import yaml

    spec = next(yaml.safe_load_all(PACKAGE.read_text()))
    needs = {n: set(t.get("dependentTasks", [])) for n, t in spec["root"]["dag"]["tasks"].items()}
    order: list[str] = []
    while needs:
        ready = sorted(n for n, upstream in needs.items() if upstream <= set(order))
        if not ready:  # a cycle, which no compiled IR has: the rest in name order
            ready = sorted(needs)
        order += ready
        for name in ready:
            del needs[name]
    return order


def step_states(details: Any, order: list[str]) -> dict[str, str]:
    """Each pipeline step's state in a run (KFP's v2beta1 run details), in pipeline order; the
    driver and DAG entries the backend also reports are left out."""
    tasks = getattr(getattr(details, "run_details", None), "task_details", None) or []
    states = {t.display_name: t.state or "PENDING" for t in tasks if t.display_name in order}
    return {name: states[name] for name in order if name in states}
