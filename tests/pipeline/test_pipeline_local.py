"""The whole pipeline through kfp.local against a real MLflow server and a real S3 server.

Runs the same command a user runs (`python -m pipelines.run_local train`), twice: the first
run registers and promotes version 1, the second registers version 2 and, no better, leaves
the champion where it is. Then bad input and unreachable services, each of which must end
with one readable line, a non-zero exit, and nothing new in the bucket or the registry.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from minio import Minio
from testkit import REPO, S3_ACCESS_KEY, S3_SECRET_KEY

from symptom_dx.knowledge import KNOWLEDGE_FILES
from symptom_dx.local.services import free_port
from symptom_dx.vocabulary import vocabulary

pytestmark = pytest.mark.integration
MODEL = "disease-classifier"


def run_cli(env: dict, state_dir, **extra) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        **env,
        "STATE_DIR": str(state_dir),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "pipelines.run_local", "train"],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def backend(mlflow_server, s3_server, data_dir, tmp_path_factory):
    env = {
        **mlflow_server.extra["env"],
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "DATA_DIR": str(data_dir),
    }
    s3 = Minio(s3_server.url.removeprefix("http://"), S3_ACCESS_KEY, S3_SECRET_KEY, secure=False)
    return env, s3, mlflow_server.extra["bucket"], tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def two_runs(backend):
    env, _, _, state = backend
    first = run_cli(env, state)
    second = run_cli(env, state)
    return first, second


def objects(s3, bucket, prefix=""):
    return sorted(o.object_name for o in s3.list_objects(bucket, prefix=prefix, recursive=True))


def registry(env):
    os.environ.update({k: v for k, v in env.items() if k.startswith("MLFLOW_")})
    from mlflow import MlflowClient

    return MlflowClient(env["MLFLOW_TRACKING_URI"])


def test_first_run_registers_and_promotes(two_runs, backend):
    first, _ = two_runs
    assert first.returncode == 0, first.stderr[-3000:]
    env, s3, bucket, _ = backend
    client = registry(env)
    v1 = client.get_model_version(MODEL, "1")
    assert v1.tags["validation_status"] == "passed"
    assert "no champion yet" in v1.tags["gate_verdict"]
    run = client.get_run(v1.run_id)
    assert run.data.metrics["k3_top1"] >= 0.88
    assert run.data.metrics["k3_top3"] >= 0.97
    assert {"k2_top1", "k4_top1", "full_top1", "k3_macro_f1", "k3_log_loss", "k3_ece"} <= set(
        run.data.metrics
    )
    assert run.data.params["algorithm"] in {"naive_bayes", "logistic_regression"}
    # one stored copy: KServe's layout and an MLflow model in the same folder, which both the
    # version's source and its storage_uri tag name; the run's own artifacts hold no model
    prefix = f"models/{MODEL}/{v1.run_id}/"
    assert v1.tags["storage_uri"] == f"s3://{bucket}/{prefix.rstrip('/')}" == v1.source
    stored = {name.removeprefix(prefix) for name in objects(s3, bucket, prefix)}
    assert {"model.joblib", "metadata.json", "MLmodel"} <= stored
    assert not any(n.endswith((".pkl", ".joblib")) for n in stored - {"model.joblib"})
    run_artifacts = [o for o in objects(s3, bucket, "mlflow-artifacts/") if v1.run_id in o]
    assert sorted(o.split(f"{v1.run_id}/artifacts/", 1)[-1] for o in run_artifacts) == [
        "evaluation.json",
        *sorted(f"knowledge/{name}" for name in KNOWLEDGE_FILES),
        "smoke.json",
    ]
    assert len(v1.tags["model_sha256"]) == 64
    assert any(
        k.startswith("datasets/") and k.endswith("/dataset.csv") for k in objects(s3, bucket)
    )


def test_the_registered_model_loads_with_mlflow_and_ranks(two_runs, backend):
    env, _, _, _ = backend
    registry(env)
    os.environ.update(env)
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    row = pd.DataFrame([[0] * vocabulary().size], columns=list(vocabulary().ids))
    row[["itching", "skin_rash", "nodal_skin_eruptions"]] = 1
    assert list(model.predict(row)) == ["Fungal infection"]


def test_smoke_set_is_logged_with_offline_answers(two_runs, backend):
    env, _, _, _ = backend
    client = registry(env)
    import json

    v1 = client.get_model_version(MODEL, "1")
    path = client.download_artifacts(v1.run_id, "smoke.json")
    smoke = json.loads(Path(path).read_text())
    assert 30 <= len(smoke) <= 40
    assert all(case["disease"] in case["top3"] for case in smoke)
    assert len({case["disease"] for case in smoke}) >= 30


def test_registered_model_has_signature_and_input_example(two_runs, backend):
    env, _, _, _ = backend
    registry(env)
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(vocabulary().ids)
    assert info.saved_input_example_info is not None


def test_second_run_leaves_the_champion(two_runs, backend):
    _, second = two_runs
    assert second.returncode == 0, second.stderr[-3000:]
    env, _, _, _ = backend
    client = registry(env)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    v2 = client.get_model_version(MODEL, "2")
    assert v2.tags["validation_status"] == "failed"
    assert "champion stays" in v2.tags["gate_verdict"]
    assert "champion stays" in second.stderr
    assert "champion is version 1" in second.stderr
    # what the deploy step puts into the InferenceService's storageUri
    uri = subprocess.run(
        [sys.executable, "-m", "symptom_dx.cli", "champion-uri"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert uri.returncode == 0, uri.stderr
    assert uri.stdout.strip() == client.get_model_version(MODEL, "1").tags["storage_uri"]


def bad_csv(tmp_path, kind: str):
    header = [s.header for s in vocabulary().symptoms] + ["prognosis"]
    good = ["1", "1"] + ["0"] * 130 + ["Fungal infection"]
    rows = [header, good]
    if kind == "missing column":
        rows = [r[1:] for r in rows]
    elif kind == "non-binary value":
        rows.append(["7", *good[1:]])
    elif kind == "unknown label":
        rows.append([*good[:-1], "Corona"])
    path = tmp_path / f"{kind.replace(' ', '-')}.csv"
    path.write_text("" if kind == "empty file" else "\n".join(map(",".join, rows)) + "\n")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing column", "missing symptom column(s): itching"),
        ("non-binary value", "value(s) not 0/1: line 3 column 'itching' = '7'"),
        ("unknown label", "unknown disease label(s): 'Corona' (1 rows)"),
        ("empty file", "the file is empty"),
    ],
)
def test_bad_data_fails_with_one_line_and_writes_nothing(
    two_runs, backend, tmp_path, kind, message
):
    env, s3, bucket, state = backend
    before = objects(s3, bucket)
    versions = len(registry(env).search_model_versions(f"name='{MODEL}'"))
    proc = run_cli(env, state, DATA_SOURCE=str(bad_csv(tmp_path, kind)))
    assert proc.returncode == 1
    line = last_line(proc)
    assert line.startswith("error: ingest: invalid dataset ") and message in line, line
    assert "Traceback" not in line
    assert objects(s3, bucket) == before
    assert len(registry(env).search_model_versions(f"name='{MODEL}'")) == versions


def test_unreachable_s3(backend):
    env, _, _, state = backend
    proc = run_cli(env, state, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert last_line(proc).startswith(
        "error: cannot use bucket 'symptom-dx': S3 at http://127.0.0.1:"
    )
    assert "unreachable" in last_line(proc)


def test_wrong_s3_keys(backend):
    env, _, _, state = backend
    proc = run_cli(env, state, AWS_SECRET_ACCESS_KEY="wrong-secret-key-000000")
    assert proc.returncode == 1
    assert "SignatureDoesNotMatch" in last_line(proc) or "AccessDenied" in last_line(proc)


def test_unreachable_mlflow(backend):
    env, _, _, state = backend
    proc = run_cli(env, state, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert last_line(proc).startswith("error: MLflow at http://127.0.0.1:")
    assert "unreachable" in last_line(proc)


def test_interrupted_registrations_are_reconciled(two_runs, backend, monkeypatch):
    """A version left without a verdict and a run left RUNNING (as when MLflow or the step dies
    mid-registration) are cleaned up by the next registration's reconcile, which says so."""
    env, s3, bucket, _ = backend
    client = registry(env)
    from symptom_dx import tracking
    from symptom_dx.settings import S3Settings
    from symptom_dx.storage import ObjectStore

    experiment = client.get_experiment_by_name("disease-prediction").experiment_id
    run = client.create_run(experiment)
    prefix = f"models/{MODEL}/{run.info.run_id}"
    s3.put_object(bucket, f"{prefix}/model.joblib", io.BytesIO(b"half"), 4)
    orphan = client.create_model_version(MODEL, f"s3://{bucket}/{prefix}", run.info.run_id)
    orphan_tags = {"storage_uri": f"s3://{bucket}/{prefix}"}
    for key, value in orphan_tags.items():
        client.set_model_version_tag(MODEL, orphan.version, key, value)
    monkeypatch.setattr(tracking, "STALE_SECONDS", -60)
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    lines = tracking.reconcile(client, MODEL, "disease-prediction", ObjectStore(S3Settings()))
    assert f"removed version {orphan.version} of {MODEL}: its registration never finished" in lines
    assert f"marked run {run.info.run_id} FAILED: it was interrupted" in lines
    assert objects(s3, bucket, prefix + "/") == []
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    # finished versions and the champion are untouched
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert client.get_model_version(MODEL, "2").tags["validation_status"] == "failed"
