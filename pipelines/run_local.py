"""`make run`: the whole system on one machine, on 127.0.0.1 only.

Starts a real S3 server (SeaweedFS) and a real MLflow server, runs the training pipeline with
Kubeflow Pipelines' local runner (in a process of its own), then serves the champion with the
KServe model server and the Gradio UI, watched by Prometheus and Alertmanager, until Ctrl+C.
State lives under .state/ (git-ignored); a second run reuses it, so the registry keeps its
versions and the champion gate has something to beat. However the run ends (Ctrl+C, SIGTERM,
SIGKILL), no process it started outlives it for long (``pipelines.local_stack.lifecycle``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.local_stack.housekeeping import keep_newest
from pipelines.local_stack.lifecycle import Run, RunInProgress
from pipelines.local_stack.services import (
    LOOPBACK,
    MlflowAuth,
    Service,
    ServiceError,
    mlflow_exports_metrics,
    start_mlflow,
    start_s3,
)
from symptom_dx.errors import SymptomDxError
from symptom_dx.knowledge import KNOWLEDGE_FILES
from symptom_dx.process_exit import skip_final_collection
from symptom_dx.settings import MODEL_NAME, S3Settings

# make run works in the checkout: state and downloads stay beside the code (both git-ignored).
REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "manifests" / "monitoring"


class LocalRunSettings(BaseSettings):
    """Ports and folders of the embedded default; every one overridable from the environment."""

    model_config = SettingsConfigDict(extra="ignore")

    data_dir: str = Field("", validation_alias="DATA_DIR")
    data_source: str = Field("", validation_alias="DATA_SOURCE")
    state_dir: Path = Field(REPO / ".state", validation_alias="STATE_DIR")
    mlflow_port: int = Field(5000, validation_alias="MLFLOW_PORT")
    s3_port: int = Field(9000, validation_alias="S3_PORT")
    http_port: int = Field(8080, validation_alias="MODEL_HTTP_PORT")
    grpc_port: int = Field(8081, validation_alias="MODEL_GRPC_PORT")
    ui_port: int = Field(7860, validation_alias="UI_PORT")
    prometheus_port: int = Field(9090, validation_alias="PROMETHEUS_PORT")
    alertmanager_port: int = Field(9093, validation_alias="ALERTMANAGER_PORT")
    # Every scrape and rule evaluation interval (e.g. "1s" in tests); empty: as the
    # PodMonitors say, else kube-prometheus-stack's 30s.
    prometheus_interval: str = Field("", validation_alias="PROMETHEUS_INTERVAL")
    # Pipeline runs whose outputs stay under .state/pipeline-root (~60 MB each).
    runs_kept: int = Field(3, ge=1, validation_alias="PIPELINE_RUNS_KEPT")
    bucket: str = Field(  # symptom_dx's, which terraform and manifests/ name too
        S3Settings.model_fields["bucket"].default, validation_alias="SYMPTOM_DX_BUCKET"
    )
    # "docker": every step runs in the components image (kfp.local.DockerRunner), as on a
    # cluster; "subprocess": in this virtual environment.
    runner: Literal["subprocess", "docker"] = Field("subprocess", validation_alias="KFP_RUNNER")
    # The pipeline's deploy step, to the cluster the kubeconfig names (`make run` serves locally).
    deploy: bool = Field(False, validation_alias="SYMPTOM_DX_DEPLOY")


# The environment variables of every port `make run` listens on (tests and the benchmark
# give each a free port).
PORT_VARIABLES = tuple(
    str(field.validation_alias)
    for name, field in LocalRunSettings.model_fields.items()
    if name.endswith("_port")
)


def say(message: str) -> None:
    typer.secho(f"==> {message}", fg=typer.colors.CYAN, err=True)


def local_credentials(state_dir: Path) -> tuple[str, str]:
    """Keys for the local S3 server: made once, kept in .state/ (never in the repository)."""
    path = state_dir / "s3-credentials"
    if not path.is_file():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"local-{secrets.token_hex(6)}\n{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
    access, secret = path.read_text().split()
    return access, secret


def resolve_data(settings: LocalRunSettings) -> tuple[str, str, Path]:
    """(source for ingest, its expected sha256 or "", folder with the knowledge tables)."""
    from symptom_dx import kaggle

    if settings.data_dir:
        folder = Path(settings.data_dir).expanduser().resolve()
        if not (folder / "Training.csv").is_file():
            raise SymptomDxError(f"DATA_DIR={settings.data_dir} has no Training.csv")
        return settings.data_source or str(folder / "Training.csv"), "", folder
    say("DATA_DIR is not set: downloading the Kaggle files (pinned sha256)")
    folder = kaggle.download(REPO / "data" / "downloads" / "kaggle-disease-prediction")
    source = settings.data_source or str(folder / "Training.csv")
    return source, "" if settings.data_source else kaggle.sha256_pin("Training.csv"), folder


def backend_env(settings: LocalRunSettings) -> dict[str, str]:
    """What the pipeline's steps (and any other client) read to use this state's S3 and MLflow:
    their loopback URLs, the S3 keys and the MLflow user kept in the state folder."""
    access, secret = local_credentials(settings.state_dir)
    s3_url = f"http://{LOOPBACK}:{settings.s3_port}"
    return {
        "AWS_ACCESS_KEY_ID": access,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "S3_VERIFY_SSL": "0",
        # KServe's storage forks this many processes to download a model (~190 MB each, for a
        # folder of two small files): one is plenty.
        "S3_MAX_FILE_CONCURRENCY": "1",
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "SYMPTOM_DX_BUCKET": settings.bucket,
        **MlflowAuth.of_state(settings.state_dir).client_env(),
        "MLFLOW_TRACKING_URI": f"http://{LOOPBACK}:{settings.mlflow_port}",
    }


def start_backends(settings: LocalRunSettings, stack: ExitStack) -> dict[str, str]:
    """S3 and MLflow on loopback; returns the environment the pipeline steps read."""
    env = backend_env(settings)
    logs = settings.state_dir / "logs"
    say(f"starting S3 (SeaweedFS) on 127.0.0.1:{settings.s3_port}")
    s3 = start_s3(
        settings.state_dir / "s3",
        settings.s3_port,
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        logs,
        (settings.bucket,),
    )
    stack.callback(s3.stop)
    say(f"starting MLflow on 127.0.0.1:{settings.mlflow_port} (basic-auth)")
    mlflow = start_mlflow(
        settings.state_dir / "mlflow",
        settings.mlflow_port,
        f"s3://{settings.bucket}/mlflow-artifacts",
        logs,
        env={k: v for k, v in env.items() if not k.startswith("MLFLOW_TRACKING_")},
        auth=MlflowAuth.of_state(settings.state_dir),
    )
    stack.callback(mlflow.stop)
    if not mlflow.extra["metrics"]:
        say("MLflow without /metrics: prometheus-flask-exporter is not installed (`make venv`)")
    return env


# What a step reads from its environment: S3, MLflow and our own settings.
STEP_ENV_PREFIXES = ("AWS_", "S3_", "MLFLOW_", "SYMPTOM_DX_")


def docker_runner(pipeline_root: Path, error_file: Path) -> object:
    """KFP's DockerRunner with the components image as the cluster runs it: uid 1000, no
    capabilities, on the host network (every server here binds 127.0.0.1)."""
    from kfp import local

    from pipelines.compile import IMAGE_ENV, kustomization_images

    os.environ.setdefault(IMAGE_ENV, kustomization_images()["components"])
    pipeline_root.mkdir(parents=True, exist_ok=True)
    pipeline_root.chmod(0o1777)  # the step's uid writes its outputs here
    env = {k: v for k, v in os.environ.items() if k.startswith(STEP_ENV_PREFIXES)}
    env["SYMPTOM_DX_ERROR_FILE"] = str(error_file)
    return local.DockerRunner(
        network_mode="host",
        user="1000:1000",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        environment=env,
    )


def run_pipeline(
    settings: LocalRunSettings, source: str, sha256: str, knowledge: Path, **params
) -> dict:
    """Run the KFP pipeline locally; return the registry's view of the new version.

    ``knowledge`` is the folder with the description, precaution and severity tables."""
    from kfp import local

    from symptom_dx.steps import ERROR_FILE_ENV

    pipeline_root = settings.state_dir / "pipeline-root"
    error_file = pipeline_root / "last-error"  # inside the root: a container step sees it
    error_file.unlink(missing_ok=True)
    os.environ[ERROR_FILE_ENV] = str(error_file)
    if settings.runner == "docker":
        runner = docker_runner(pipeline_root, error_file)
        if Path(source).is_file():  # the container sees only the pipeline root
            source = str(shutil.copy(source, pipeline_root / Path(source).name))
        tables = pipeline_root / "knowledge"
        tables.mkdir(exist_ok=True)
        for name in KNOWLEDGE_FILES:
            shutil.copy(knowledge / name, tables / name)
        knowledge = tables
    else:
        runner = local.SubprocessRunner(use_venv=False)
    # KFP 2.14's local runner keeps no scratch folder of its own (2.15+ made one per run in
    # /tmp unless given workspace_root); an earlier version's folder in .state is removed after
    workspace = settings.state_dir / "kfp-workspace"
    local.init(runner=runner, pipeline_root=str(pipeline_root), raise_on_error=True)
    from pipelines.disease_training_pipeline import disease_training_pipeline

    say("running pipeline disease-training: ingest -> split -> train -> evaluate -> register")
    started = time.monotonic()
    try:
        disease_training_pipeline(
            data_source=source,
            data_sha256=sha256,
            knowledge_source=str(knowledge),
            deploy=settings.deploy,
            **params,
        )
    except RuntimeError as e:
        if error_file.is_file():
            raise SymptomDxError(error_file.read_text().strip()) from None
        raise SymptomDxError(f"pipeline failed: {str(e).splitlines()[0]}") from None
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        removed = keep_newest(pipeline_root, settings.runs_kept)
        if removed:
            say(f"removed {len(removed)} old pipeline run folders (keeping {settings.runs_kept})")
    return {"seconds": round(time.monotonic() - started, 1), **latest_registration()}


def latest_registration() -> dict:
    """The newest version of the registered model, its verdict and the champion."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from symptom_dx.settings import MlflowSettings
    from symptom_dx.tracking import champion

    settings = MlflowSettings()
    best = champion(settings)
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{settings.registered_model}'")
        newest = max(versions, key=lambda v: int(v.version))
        metrics = client.get_run(newest.run_id).data.metrics
    except (MlflowException, ValueError) as e:
        raise SymptomDxError(f"cannot read the registry after the run: {e}") from None
    return {
        "version": newest.version,
        "verdict": newest.tags.get("gate_verdict", ""),
        "champion": best.version,
        "champion_uri": best.storage_uri,
        "champion_sha256": best.model_sha256,
        "metrics": metrics,
    }


def serve(
    settings: LocalRunSettings,
    env: dict,
    model_uri: str,
    model_sha256: str,
    data_dir: Path,
    stack: ExitStack,
) -> None:
    from pipelines.local_stack.model_server import start_model_server
    from pipelines.local_stack.ui_server import start_ui

    logs = settings.state_dir / "logs"
    say(f"serving {model_uri}")
    # the digest registered with the champion: the server refuses a file that changed since
    model = start_model_server(
        model_uri,
        settings.http_port,
        settings.grpc_port,
        logs,
        env,
        extra_args=["--model_sha256", model_sha256],
    )
    stack.callback(model.stop)
    ui = start_ui(model.url, settings.ui_port, data_dir, logs, env)
    stack.callback(ui.stop)
    alertmanager, prometheus = start_monitoring(settings, env, model, ui, stack)
    typer.secho(
        f"\nmodel server  {model.url}/v2/models/{MODEL_NAME}  (gRPC 127.0.0.1:{settings.grpc_port})"
        f"\nweb UI        {ui.url}\nMLflow        {env['MLFLOW_TRACKING_URI']}"
        f"  (user and password in {settings.state_dir}/mlflow-credentials)"
        f"\nS3            {env['AWS_ENDPOINT_URL']}  (keys in {settings.state_dir}/s3-credentials)"
        f"\nPrometheus    {prometheus.url}  (targets: {prometheus.url}/targets)"
        f"\nAlertmanager  {alertmanager.url}"
        "\n\nCtrl+C stops everything.",
        fg=typer.colors.GREEN,
    )
    wait_for_interrupt([model, ui, alertmanager, prometheus])


def start_monitoring(
    settings: LocalRunSettings, env: dict, model: Service, ui: Service, stack: ExitStack
) -> tuple[Service, Service]:
    """Alertmanager, then Prometheus scraping the model server, the UI and MLflow with the
    PrometheusRule's groups loaded; returns both."""
    from pipelines.local_stack.prometheus import (
        MLFLOW_JOB,
        ScrapeTarget,
        start_alertmanager,
        start_prometheus,
    )

    logs = settings.state_dir / "logs"
    state = settings.state_dir / "prometheus"
    say(f"starting Alertmanager on 127.0.0.1:{settings.alertmanager_port}")
    alertmanager = start_alertmanager(state / "alertmanager", settings.alertmanager_port, logs)
    stack.callback(alertmanager.stop)
    say(f"starting Prometheus on 127.0.0.1:{settings.prometheus_port}")

    def host(url: str) -> str:
        return url.removeprefix("http://")

    targets = [
        ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-serving.yaml", host(model.url)),
        ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-ui.yaml", host(ui.url)),
    ]
    if mlflow_exports_metrics():
        auth = MlflowAuth.of_state(settings.state_dir)
        login = (auth.username, auth.password_file(settings.state_dir))
        targets.append(ScrapeTarget(MLFLOW_JOB, host(env["MLFLOW_TRACKING_URI"]), login=login))
    prometheus = start_prometheus(
        state,
        settings.prometheus_port,
        targets,
        MONITORING / "prometheusrule.yaml",
        logs,
        interval=settings.prometheus_interval,
        alertmanager=host(alertmanager.url),
    )
    stack.callback(prometheus.stop)
    return alertmanager, prometheus


def wait_for_interrupt(services: list[Service]) -> None:
    """Block until Ctrl+C, SIGTERM or SIGHUP (``lifecycle.Run`` turns each into
    KeyboardInterrupt); fail if a served process dies on its own."""
    try:
        while True:
            for svc in services:
                if svc.proc.poll() is not None:
                    raise ServiceError(
                        f"{svc.name} exited with code {svc.proc.returncode}; see {svc.log_path}"
                    )
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")


def preflight() -> None:
    """Fail in seconds, with one line, if S3 or MLflow cannot be used."""
    from symptom_dx.settings import MlflowSettings, S3Settings
    from symptom_dx.storage import ObjectStore
    from symptom_dx.tracking import check_tracking_server

    ObjectStore(S3Settings()).check()
    check_tracking_server(MlflowSettings())


def report(result: dict) -> None:
    m = result["metrics"]
    say(
        f"pipeline finished in {result['seconds']} s: version {result['version']}"
        f" (k=3 vignettes on held-out patterns: top-1 {m.get('k3_top1', 0):.3f},"
        f" top-3 {m.get('k3_top3', 0):.3f})"
    )
    say(f"gate: {result['verdict']}")
    say(f"champion is version {result['champion']} at {result['champion_uri']}")


class PipelineFailed(Exception):
    """The pipeline's process failed; it has already said why."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


app = typer.Typer(add_completion=False, no_args_is_help=True)


# What make run sets itself, and how a user sets it instead.
SET_BY_MAKE_RUN = {
    "data_source": "DATA_SOURCE or DATA_DIR",
    "data_sha256": "it is checked against data/download.py's pins",
    "knowledge_source": "the folder of the data",
    "deploy": "make run serves on this machine (SYMPTOM_DX_DEPLOY=true deploys to a cluster)",
}
PipelineParameters = Annotated[
    list[str] | None,
    typer.Argument(help="NAME=VALUE pipeline parameters, e.g. algorithms=naive_bayes"),
]


@app.command()
def run(
    params: PipelineParameters = None,
    serve_model: bool = typer.Option(True, "--serve/--no-serve", help="serve the champion"),
) -> None:
    """Start local S3 and MLflow, train, evaluate, register, then serve model and UI with
    Prometheus and Alertmanager."""
    settings = LocalRunSettings()
    try:
        check_parameters(params or [])  # a typo fails before anything starts
        # Run: SIGTERM/SIGHUP stop it like Ctrl+C from here on, a reaper stops what it started
        # if it is killed, and what an earlier killed run left is stopped first.
        with Run(settings.state_dir, say), ExitStack() as stack:
            source, sha256, data_dir = resolve_data(settings)
            env = start_backends(settings, stack)
            os.environ.update(env)
            result = run_pipeline_in_child(settings, source, sha256, data_dir, params or [])
            if serve_model:
                serve(
                    settings,
                    env,
                    result["champion_uri"],
                    result["champion_sha256"],
                    data_dir,
                    stack,
                )
    except KeyboardInterrupt:
        say("interrupted: everything make run started is stopped")
        raise typer.Exit(130) from None
    except PipelineFailed as e:
        raise typer.Exit(e.code) from None  # the pipeline's process said why
    except (SymptomDxError, ServiceError, RunInProgress) as e:
        raise error_exit(e) from None


def run_pipeline_in_child(
    settings: LocalRunSettings, source: str, sha256: str, knowledge: Path, params: list[str]
) -> dict:
    """`train` in a process of its own, against the S3 and MLflow just started: KFP's and
    MLflow's imports and whatever the steps leave in memory (~270 MB) go away with it, and
    the process that stays to serve is small."""
    result_file = settings.state_dir / "last-pipeline-result.json"
    result_file.unlink(missing_ok=True)
    args = ["--source", source, "--sha256", sha256, "--knowledge", str(knowledge)]
    run_in_child("train", *args, "--result", str(result_file), "--", *params)
    if not result_file.is_file():
        raise PipelineFailed(1)
    return json.loads(result_file.read_text())


def run_in_child(command: str, *args: str) -> None:
    """``python -m pipelines.run_local COMMAND ARGS...``; PipelineFailed with its exit code if
    it fails (it has said why)."""
    argv = [sys.executable, "-m", "pipelines.run_local", command, *args]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise PipelineFailed(done.returncode)


def error_exit(e: Exception) -> typer.Exit:
    """Say ``e`` in one line on stderr; the exit (code 1) for the caller to raise."""
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def check_parameters(params: list[str]) -> None:
    """``pipeline_parameters``' check of NAME=VALUE pairs, in a short-lived process: it imports
    the pipeline's definition (KFP and the Kubernetes client, ~70 MB), which the process that
    stays to serve should not hold. No pairs: the defaults, nothing to check."""
    if not params:
        return
    run_in_child("check", "--", *params)


def pipeline_parameters(pairs: list[str] | None) -> dict:
    """NAME=VALUE pairs -> the pipeline's typed parameters (not those make run sets)."""
    from pipelines.client import typed_parameters
    from symptom_dx.candidates import HYPERPARAMETERS
    from symptom_dx.config import DEFAULTS
    from symptom_dx.steps import hyperparameters, parse_algorithms

    params = typed_parameters(pairs or [], SET_BY_MAKE_RUN)
    # the train step's own checks, before anything starts
    parse_algorithms(params.get("algorithms", DEFAULTS.algorithms))
    hyperparameters(
        **{
            **DEFAULTS.hyperparameter_values(),
            **{k: params[k] for k in HYPERPARAMETERS & params.keys()},
        }
    )
    return params


@app.command(hidden=True)
def check(params: PipelineParameters = None) -> None:
    """Check NAME=VALUE pipeline parameters as ``run`` would take them, and exit."""
    try:
        pipeline_parameters(params)
    except SymptomDxError as e:
        raise error_exit(e) from None


@app.command()
def train(
    params: PipelineParameters = None,
    source: Annotated[str, typer.Option(hidden=True, help="what to ingest (run resolved)")] = "",
    sha256: Annotated[str, typer.Option(hidden=True, help="its expected sha256")] = "",
    knowledge: Annotated[
        Path | None, typer.Option(hidden=True, help="folder of the knowledge tables")
    ] = None,
    result: Annotated[Path | None, typer.Option(hidden=True, help="write it here (JSON)")] = None,
) -> None:
    """Run the pipeline locally against the S3 and MLflow the environment names.

    AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, SYMPTOM_DX_BUCKET and
    MLFLOW_TRACKING_URI say where; DATA_DIR or DATA_SOURCE say what to train on.
    """
    settings = LocalRunSettings()
    try:
        if not source:
            source, sha256, knowledge = resolve_data(settings)
        preflight()
        outcome = run_pipeline(
            settings,
            source,
            sha256,
            knowledge or Path(source).parent,
            **pipeline_parameters(params),
        )
        report(outcome)
        if result is not None:
            result.write_text(json.dumps(outcome))
    except SymptomDxError as e:
        raise error_exit(e) from None


if __name__ == "__main__":
    skip_final_collection()
    app()
