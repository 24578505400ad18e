"""Every image, run as the cluster runs it (tests/images/pods.py): the exact command, args, env,
ports, user, read-only root, dropped capabilities, limits and probes of the rendered manifests.

The model server loads the champion from a folder at /mnt/models (what KServe's storage
initializer leaves, here made by our storage-initializer image from the real S3 server) and from
an s3:// URI; the UI reaches the model server and renders the form; MLflow serves /health and
its registry with artifacts proxied to S3; the components image runs the whole pipeline through
KFP's DockerRunner and registers a champion.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from minio import Minio
from pods import deployment_pod, named, readable_copy, running_pod, start_pod, wait_ready
from testkit import (
    DEFAULT_CANDIDATE_ONLY,
    FUNGAL,
    FUNGAL_IDS,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    run_pipeline_command,
    s3_env,
)

from symptom_dx.settings import MODEL_NAME

pytestmark = pytest.mark.integration

# What each image is for: the packages whose every module must import inside it.
IMAGE_PACKAGES = {
    "serving": ["serving"],
    "ui": ["ui"],
    "components": ["symptom_dx", "components", "pipelines"],
    "storage-initializer": ["serving.storage_initializer"],
}
IMPORT_ALL = """
import importlib, os, pkgutil, shutil, sys
failed = []
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        try:
            importlib.import_module(info.name)
        except Exception as e:
            failed.append(f"{info.name}: {type(e).__name__}: {e}")
leftovers = [p for p in ("/opt/uv", "/root/.cache", "/src") if os.path.exists(p)]
leftovers += [c for c in ("gcc", "cc", "pip", "uv") if shutil.which(c)]
print("\\n".join(failed + [f"left in the image: {p}" for p in leftovers]))
sys.exit(1 if failed or leftovers else 0)
"""
PREDICTOR = "http://disease-classifier-predictor.kserve-inference.svc.cluster.local"
MODELS_BUCKET = "symptom-dx-models"  # the bucket manifests/ names


def s3_secret(s3_url: str) -> dict[str, str]:
    """model-store-credentials as terraform/ writes it, pointing at the test's S3 server."""
    return {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "S3_VERIFY_SSL": "0",
        "S3_USE_HTTPS": "0",
    }


@pytest.fixture(scope="module")
def models_bucket(s3_server):
    client = Minio(
        s3_server.url.removeprefix("http://"), S3_ACCESS_KEY, S3_SECRET_KEY, secure=False
    )
    if not client.bucket_exists(MODELS_BUCKET):
        client.make_bucket(MODELS_BUCKET)
    return client


@pytest.fixture(scope="module")
def model_in_s3(models_bucket, trained_model_dir) -> str:
    prefix = "models/disease-classifier/image-test"
    for path in trained_model_dir.iterdir():
        models_bucket.fput_object(MODELS_BUCKET, f"{prefix}/{path.name}", str(path))
    return f"s3://{MODELS_BUCKET}/{prefix}"


@pytest.fixture(scope="module")
def model_folder(trained_model_dir, tmp_path_factory):
    return readable_copy(trained_model_dir, tmp_path_factory.mktemp("mnt") / "models")


@pytest.fixture(scope="module")
def predictor(images, serving_pod, model_folder, report):
    """The serving image as KServe's raw deployment runs it, on the model at /mnt/models."""
    pod_spec, container = serving_pod
    pod = start_pod(pod_spec, container, extra_mounts={model_folder: "/mnt/models:ro"})
    ready = {"httpGet": {"path": f"/v2/models/{MODEL_NAME}/ready", "port": "http1"}}
    try:
        report["serving_cold_start_s"] = round(wait_ready(pod, container, ready, 60), 2)
        yield pod
    finally:
        pod.stop()


def infer_names(base_url: str, symptoms: list[str]) -> dict:
    body = {
        "inputs": [
            {"name": "symptoms", "datatype": "BYTES", "shape": [1], "data": [", ".join(symptoms)]}
        ]
    }
    answer = httpx.post(f"{base_url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return {o["name"]: o["data"] for o in answer.json()["outputs"]}


async def grpc_top_disease(address: str) -> str:
    request = InferRequest(
        model_name=MODEL_NAME,
        infer_inputs=[InferInput("symptoms", [1], "BYTES", [FUNGAL])],
    )
    async with InferenceGRPCClient(address, retries=0, timeout=10) as client:
        response = await client.infer(request)
    top = response.outputs[0].as_numpy().reshape(-1)[0]
    return top.decode() if isinstance(top, bytes) else str(top)


# -- every image -------------------------------------------------------------------------------
@pytest.mark.parametrize("target", sorted(IMAGE_PACKAGES))
def test_every_module_of_the_image_imports_and_nothing_else_is_left(images, target, report):
    ref = images[target]
    user = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Config.User}}", ref],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert user == "1000:1000", f"{ref} runs as {user!r}, the manifests run uid 1000"
    argv = ["docker", "run", "--rm", "--network", "none", "--read-only", "--user", "1000:1000"]
    argv += [
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--entrypoint",
        "python",
        ref,
        "-c",
        IMPORT_ALL,
    ]
    out = subprocess.run([*argv, *IMAGE_PACKAGES[target]], capture_output=True, text=True)
    assert out.returncode == 0, f"{ref}:\n{out.stdout}{out.stderr[-2000:]}"
    size = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", ref], capture_output=True, text=True
    ).stdout
    report.setdefault("image_size_mb", {})[target] = int(size) // 1_000_000


def test_help_of_every_entrypoint_needs_nothing_but_the_image(images):
    checks = {
        "serving": (None, ["--help"], "--model_dir"),
        "ui": ("python", ["-m", "ui", "--help"], ""),
        "components": ("symptom-dx", ["--help"], "validate"),
        "storage-initializer": (None, [], "usage: python -m serving.storage_initializer"),
    }
    for target, (entrypoint, args, expected) in checks.items():
        argv = ["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp"]
        argv += ["--cap-drop", "ALL"]
        if entrypoint:
            argv += ["--entrypoint", entrypoint]
        out = subprocess.run([*argv, images[target], *args], capture_output=True, text=True)
        if target == "ui":  # no data folder given: it must say what to set, in one line
            assert out.returncode == 2 and "SYMPTOM_DX_UI_DATA_DIR" in out.stderr, out.stderr
            continue
        if target == "storage-initializer":
            assert out.returncode == 2 and expected in out.stderr, out.stderr
            continue
        assert out.returncode == 0, f"{target}: {out.stderr[-2000:]}"
        assert expected in out.stdout


# -- serving -----------------------------------------------------------------------------------
def test_predictor_answers_v2_rest_grpc_and_metrics(predictor):
    top = infer_names(predictor.url("http1"), FUNGAL_IDS)
    assert top["disease"][0] == "Fungal infection"
    assert (
        asyncio.run(grpc_top_disease(f"127.0.0.1:{predictor.port('grpc')}")) == "Fungal infection"
    )
    metrics = httpx.get(f"{predictor.url('http1')}/metrics", timeout=5).text
    assert "request_predict_seconds" in metrics
    assert "disease_classifier_patients_total" in metrics
    assert "itching" not in predictor.logs()  # no symptom payloads in the log


def test_storage_initializer_fetches_the_champion_the_predictor_serves(
    images, serving_pod, model_in_s3, s3_server, tmp_path
):
    """What KServe does for an s3:// storageUri: our storage-initializer image copies the
    folder into the shared /mnt/models volume, then the predictor starts on it."""
    models = tmp_path / "models"
    models.mkdir()
    models.chmod(0o777)  # an emptyDir: writable by the init container's uid
    host = s3_server.url.removeprefix("http://")
    # The variables KServe's S3 credential builder sets from the service account's Secret and
    # its serving.kserve.io/s3-* annotations (terraform/modules/platform/storage.tf).
    env = {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "S3_ENDPOINT": host,
        "AWS_ENDPOINT_URL": f"http://{host}",
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "0",
        "AWS_REGION": "us-east-1",
    }
    argv = ["docker", "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp"]
    argv += ["--user", "1000:1000", "--cap-drop", "ALL", "-v", f"{models}:/mnt/models"]
    argv += [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    out = subprocess.run(
        [*argv, images["storage-initializer"], model_in_s3, "/mnt/models"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert {"model.joblib", "metadata.json"} <= {p.name for p in models.iterdir()}

    bad = subprocess.run(
        [*argv, images["storage-initializer"], f"{model_in_s3}-missing", "/mnt/models"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("storage-initializer: cannot copy")

    pod_spec, container = serving_pod
    with running_pod(pod_spec, container, extra_mounts={models: "/mnt/models:ro"}) as pod:
        wait_ready(pod, container, {"httpGet": {"path": "/v2/health/ready", "port": "http1"}}, 60)
        assert infer_names(pod.url("http1"), FUNGAL_IDS)["disease"][0] == "Fungal infection"


def test_predictor_loads_an_s3_uri_itself(images, serving_pod, model_in_s3, s3_server, predictor):
    """``--model_dir s3://...`` with the AWS_* variables: the image's own download path."""
    pod_spec, container = serving_pod
    container = {
        **container,
        "args": [
            "--model_dir=" + model_in_s3 if a.startswith("--model_dir=") else a
            for a in container["args"]
        ]
        + ["--http_port=18080", "--grpc_port=18081"],
        "env": [{"name": k, "value": v} for k, v in s3_secret(s3_server.url).items()],
        "ports": [{"name": "http1", "containerPort": 18080}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {"volumes": [{"name": "tmp", "emptyDir": {}}]}
    with running_pod(pod_spec, container) as pod:
        wait_ready(pod, container, {"httpGet": {"path": "/v2/health/ready", "port": "http1"}}, 60)
        assert infer_names(pod.url("http1"), FUNGAL_IDS)["disease"][0] == "Fungal infection"


# -- UI ----------------------------------------------------------------------------------------
def test_ui_reaches_the_predictor_and_serves_the_form(
    images, rendered_manifests, predictor, data_dir, tmp_path
):
    from gradio_client import Client

    pod_spec, container = deployment_pod(rendered_manifests, "symptom-dx-ui", "ui")
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for name in ("symptom_Description.csv", "symptom_precaution.csv", "Symptom_severity.csv"):
        (knowledge / name).write_bytes((data_dir / name).read_bytes())
    readable_copy(knowledge, tmp_path / "knowledge-ro")
    with running_pod(
        pod_spec,
        container,
        volumes={"knowledge": tmp_path / "knowledge-ro"},
        replace={PREDICTOR: predictor.url("http1")},
    ) as pod:
        wait_ready(pod, container, timeout=90)
        page = httpx.get(pod.url(), timeout=10)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        client = Client(pod.url(), verbose=False, download_files=False)
        server_line, *_ = client.predict(FUNGAL_IDS, "en", api_name="/diagnose")
        assert server_line == "Model server: ready."
        assert "itching" not in pod.logs()


# -- MLflow ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_pod(images, rendered_manifests, s3_server, models_bucket, tmp_path_factory, report):
    """The MLflow image as its Deployment runs it, on a fresh data volume; yields
    ``(pod, client environment of its admin user)``."""
    pod_spec, container = deployment_pod(rendered_manifests, "mlflow", "mlflow")
    root = tmp_path_factory.mktemp("mlflow-pod")
    data = root / "mlflow-data"
    data.mkdir()
    data.chmod(0o777)  # a fresh PVC, group-writable through fsGroup on a cluster
    [auth_volume] = [v for v in pod_spec["volumes"] if "configMap" in v]
    auth_ini = named(rendered_manifests, "ConfigMap", auth_volume["configMap"]["name"])["data"]
    config = root / "auth-config"
    config.mkdir()
    for name, text in auth_ini.items():
        (config / name).write_text(text)
    readable_copy(config, root / "auth-config-ro")
    admin = {
        "MLFLOW_AUTH_ADMIN_USERNAME": "image-test-admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": "image-test-password-0123",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "image-test-flask-secret",
    }
    with running_pod(
        pod_spec,
        container,
        secrets={"model-store-credentials": s3_secret(s3_server.url), "mlflow-auth": admin},
        volumes={"data": data, auth_volume["name"]: root / "auth-config-ro"},
    ) as pod:
        report["mlflow_cold_start_s"] = round(wait_ready(pod, container), 1)
        yield (
            pod,
            {
                "MLFLOW_TRACKING_URI": pod.url(),
                "MLFLOW_TRACKING_USERNAME": admin["MLFLOW_AUTH_ADMIN_USERNAME"],
                "MLFLOW_TRACKING_PASSWORD": admin["MLFLOW_AUTH_ADMIN_PASSWORD"],
            },
        )


def test_mlflow_serves_health_and_the_registry(mlflow_pod, models_bucket):
    pod, client_env = mlflow_pod
    url = client_env["MLFLOW_TRACKING_URI"]
    env = {**os.environ, **client_env}
    script = """
import mlflow, tempfile, pathlib
from mlflow import MlflowClient
client = MlflowClient()
with mlflow.start_run() as run:
    mlflow.log_metric("k3_top1", 0.9)
    folder = pathlib.Path(tempfile.mkdtemp())
    (folder / "note.txt").write_text("proxied to S3")
    mlflow.log_artifacts(str(folder), "notes")
client.create_registered_model("image-test")
source = f"runs:/{run.info.run_id}/notes"
version = client.create_model_version("image-test", source, run.info.run_id)
client.set_registered_model_alias("image-test", "champion", version.version)
print(client.get_model_version_by_alias("image-test", "champion").version)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:] + pod.logs()[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1"
    stored = [
        o.object_name
        for o in models_bucket.list_objects(MODELS_BUCKET, "mlflow-artifacts/", recursive=True)
    ]
    assert any(name.endswith("notes/note.txt") for name in stored), stored
    # the Service's names are allowed Hosts (not 403 "Invalid Host header"), others are not
    registry = f"{url}/api/2.0/mlflow/registered-models"
    credentials = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
    model = {"name": "image-test"}
    service_hosts = ("mlflow.mlflow.svc.cluster.local", "mlflow.mlflow", "localhost")
    for host in (f"{name}:5000" for name in service_hosts):
        answer = httpx.get(
            f"{registry}/get", params=model, headers={"Host": host}, auth=credentials
        )
        assert answer.status_code == 200, (host, answer.text)
    foreign = {"Host": "attacker.example:5000"}
    refused = httpx.get(f"{registry}/get", params=model, headers=foreign, auth=credentials)
    assert refused.status_code == 403
    # the registry answers only with credentials: nothing else can move the champion
    assert httpx.get(f"{registry}/get", params=model).status_code == 401
    move = {**model, "alias": "champion", "version": "1"}
    assert httpx.post(f"{registry}/alias", json=move).status_code == 401
    wrong = (env["MLFLOW_TRACKING_USERNAME"], "a-guess")
    assert httpx.post(f"{registry}/alias", json=move, auth=wrong).status_code == 401


# -- components --------------------------------------------------------------------------------
def test_pipeline_runs_in_the_components_image_and_registers_a_champion(
    mlflow_pod, s3_server, data_dir, tmp_path, report
):
    """`python -m pipelines.run_local train` with KFP_RUNNER=docker: each step is KFP's own
    executor in the components image (uid 1000, no capabilities), against the real S3 server
    and the MLflow image (the cluster's pair)."""
    _, client_env = mlflow_pod
    env = {
        **os.environ,
        **s3_env(s3_server.url, MODELS_BUCKET),
        **client_env,
        "SYMPTOM_DX_REGISTERED_MODEL": "image-pipeline-test",
        "DATA_DIR": str(data_dir),
        "STATE_DIR": str(tmp_path / "state"),
        "KFP_RUNNER": "docker",
    }
    started = time.monotonic()
    out = run_pipeline_command(env, timeout=600, params=DEFAULT_CANDIDATE_ONLY)
    report["pipeline_in_docker_s"] = round(time.monotonic() - started, 1)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "gate: no champion yet" in out.stderr
    assert "champion is version 1" in out.stderr
    assert "Found image" in out.stdout + out.stderr  # the steps ran in the local image
