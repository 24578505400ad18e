"""`make run`'s command end to end, as after a crash, then the pipeline again on its backends.

A run and its reaper are SIGKILLed mid-pipeline; the next run on the same state stops what they
left, says so, trains, registers and promotes version 1, and serves it with the UI and the
monitoring. While it serves, the tests run the pipeline's command (`python -m
pipelines.run_local train`) against the same S3 and MLflow a second time (version 2, no better,
leaves the champion: started in the background as soon as the first run serves, while the tests
that only read check what the first run stored and serves), then with bad data and with
unreachable services, each of which must end with one readable line, a non-zero exit, and
nothing new in the bucket or the registry. The last test stops the run with Ctrl+C
(test_make_run_stopped.py: SIGTERM, and SIGKILL of the run alone).

The tests share one run (module fixtures) and run in file order.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from makerun import PIPELINE, SERVING, MakeRun, free_ports, infer, nothing_left
from minio import Minio
from testkit import DEFAULT_CANDIDATE_ONLY, PipelineCommand, prometheus, run_pipeline_command

from pipelines.local_stack.lifecycle import RECORD_FILE, alive, processes_of
from pipelines.local_stack.services import free_port, port_is_free
from pipelines.run_local import LocalRunSettings, backend_env
from symptom_dx.knowledge import KNOWLEDGE_FILES
from symptom_dx.vocabulary import vocabulary

pytestmark = pytest.mark.integration
MODEL = "disease-classifier"


@pytest.fixture(scope="module")
def crashed(data_dir, tmp_path_factory) -> dict:
    """A run and its reaper SIGKILLed mid-pipeline: what they left behind."""
    ports = free_ports()
    state = tmp_path_factory.mktemp("make-run") / "state"
    kfp_temp_before = set(Path("/tmp").glob("kfp-workspace-*"))
    with MakeRun(data_dir, state, ports, PIPELINE_RUNS_KEPT="1") as killed:
        killed.wait_for(PIPELINE, timeout=120)
        record = killed.record()
        os.kill(record["reaper"], signal.SIGKILL)
        killed.proc.kill()
        killed.proc.wait()
        deadline = time.monotonic() + 10
        while alive(record["reaper"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    left = processes_of(record["run_id"])
    assert left, "nothing left to take over"
    assert not port_is_free(ports["S3_PORT"])
    return {
        "ports": ports,
        "state": state,
        "record": record,
        "left": left,
        "kfp_temp_before": kfp_temp_before,
    }


@pytest.fixture(scope="module")
def served(crashed, data_dir):
    """The next run on the same state, serving (or failed: each test then says why)."""
    with MakeRun(data_dir, crashed["state"], crashed["ports"], PIPELINE_RUNS_KEPT="1") as run:
        run.wait_for(SERVING)
        yield run


@pytest.fixture(scope="module")
def backend(served, tmp_path_factory):
    """(environment of the run's S3 and MLflow, S3 client, bucket, a state folder for `train`)."""
    settings = LocalRunSettings(
        STATE_DIR=served.state, **{k: str(v) for k, v in served.ports.items()}
    )
    env = {**backend_env(settings), "DATA_DIR": served.env["DATA_DIR"]}
    s3 = Minio(
        env["AWS_ENDPOINT_URL"].removeprefix("http://"),
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        secure=False,
    )
    return env, s3, env["SYMPTOM_DX_BUCKET"], tmp_path_factory.mktemp("train-state")


def cli_env(env: dict, state_dir, **extra) -> dict:
    return {**os.environ, **env, "STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1", **extra}


def run_cli(env: dict, state_dir, params=DEFAULT_CANDIDATE_ONLY, **extra):
    return run_pipeline_command(cli_env(env, state_dir, **extra), timeout=300, params=params)


@pytest.fixture(scope="module")
def second_run(backend, tmp_path_factory):
    """The pipeline's command a second time, started in the background when the first run
    serves (the first test asks for it): the checks of what the first run stored, which only
    read, overlap it. test_second_run_leaves_the_champion waits for it."""
    env, _, _, state = backend
    output = tmp_path_factory.mktemp("second-run")
    command = PipelineCommand(cli_env(env, state), output, DEFAULT_CANDIDATE_ONLY)
    yield command
    command.kill()


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


def objects(s3, bucket, prefix=""):
    return sorted(o.object_name for o in s3.list_objects(bucket, prefix=prefix, recursive=True))


def registry(env):
    os.environ.update({k: v for k, v in env.items() if k.startswith("MLFLOW_")})
    from mlflow import MlflowClient

    return MlflowClient(env["MLFLOW_TRACKING_URI"])


def test_the_next_run_stops_what_a_killed_run_left(crashed, served, second_run):
    output = served.output
    # the killed pipeline's steps may still have been starting when `left` was taken
    taken_over = re.search(r"stopped (\d+) processes an earlier run left", output)
    assert taken_over and int(taken_over[1]) >= len(crashed["left"]), output[-2000:]
    assert "is in use" not in output
    assert processes_of(crashed["record"]["run_id"]) == []
    assert len(processes_of(served.record()["run_id"])) >= 6  # S3, MLflow (2), model server...


def test_it_serves_and_monitors(served):
    output = served.output
    assert "gate: no champion yet" in output
    model = served.url("MODEL_HTTP_PORT")
    assert f"model server  {model}/v2/models/disease-classifier" in output
    assert f"web UI        {served.url('UI_PORT')}" in output
    prom = served.url("PROMETHEUS_PORT")
    assert f"Prometheus    {prom}" in output
    assert f"Alertmanager  {served.url('ALERTMANAGER_PORT')}" in output

    # a request before the model server's first scrape is not counted: wait for it
    up = 'up{job=~".*disease-classifier.*"}'
    deadline = time.monotonic() + 30
    while not prometheus(prom, "query", query=f"{up} == 1")["result"]:
        assert time.monotonic() < deadline, "Prometheus never scraped the model server"
        time.sleep(0.5)
    # ten requests, as a user would send them
    for _ in range(10):
        answer = infer(model, "itching, skin rash, nodal skin eruptions")
        assert answer.json()["outputs"][0]["data"][0] == "Fungal infection"
    assert httpx.get(served.url("UI_PORT"), timeout=5).status_code == 200

    # every target up, every rule evaluated without error, the patients counted
    counted = "model_name:disease_classifier_patients:increase1h"
    drift = "model_name:disease_classifier_input_drift:tvd1h"
    deadline = time.monotonic() + 30
    while True:
        targets = prometheus(prom, "targets")["activeTargets"]
        groups = prometheus(prom, "rules")["groups"]
        patients = prometheus(prom, "query", query=counted)["result"]
        drifts = prometheus(prom, "query", query=drift)["result"]
        if (
            all(t["health"] == "up" for t in targets)
            and all(
                r.get("lastEvaluation", "0001")[:4] != "0001" for g in groups for r in g["rules"]
            )
            and patients
            and float(patients[0]["value"][1]) >= 10
            and drifts
        ):
            break
        assert time.monotonic() < deadline, (targets, groups, patients, drifts)
        time.sleep(0.5)
    assert {t["labels"]["job"] for t in targets} == {
        "kserve-inference/disease-classifier",
        "kserve-inference/symptom-dx-ui",
        "mlflow/mlflow",
    }
    rules = [r for g in groups for r in g["rules"]]
    assert all(r["health"] == "ok" for r in rules), rules
    assert {g["name"] for g in groups} >= {"symptom-dx.serving", "symptom-dx.drift"}
    am = httpx.get(f"{served.url('ALERTMANAGER_PORT')}/api/v2/status", timeout=5)
    assert am.status_code == 200


def test_first_run_registers_and_promotes(served, backend):
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
    # the champion is served with its recorded digest: a file changed in the bucket since is
    # refused before it is unpickled, as on the cluster
    servers = [
        argv
        for p in processes_of(served.record()["run_id"])
        if b"serving" in (argv := Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0"))
    ]
    assert [argv[argv.index(b"--model_sha256") + 1].decode() for argv in servers] == [
        v1.tags["model_sha256"]
    ]
    assert any(
        k.startswith("datasets/") and k.endswith("/dataset.csv") for k in objects(s3, bucket)
    )


def test_the_registered_model_loads_with_mlflow_and_ranks(backend):
    env, _, _, _ = backend
    registry(env)
    os.environ.update(env)
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    row = pd.DataFrame([[0] * vocabulary().size], columns=list(vocabulary().ids))
    row[["itching", "skin_rash", "nodal_skin_eruptions"]] = 1
    assert list(model.predict(row)) == ["Fungal infection"]


def test_smoke_set_is_logged_with_offline_answers(backend):
    env, _, _, _ = backend
    client = registry(env)
    v1 = client.get_model_version(MODEL, "1")
    path = client.download_artifacts(v1.run_id, "smoke.json")
    smoke = json.loads(Path(path).read_text())
    assert 30 <= len(smoke) <= 40
    assert all(case["disease"] in case["top3"] for case in smoke)
    assert len({case["disease"] for case in smoke}) >= 30


def test_registered_model_has_signature_and_input_example(backend):
    env, _, _, _ = backend
    registry(env)
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(vocabulary().ids)
    assert info.saved_input_example_info is not None


def test_second_run_leaves_the_champion(backend, second_run):
    env, _, _, _ = backend
    second = second_run.wait(timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    client = registry(env)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    v2 = client.get_model_version(MODEL, "2")
    assert v2.tags["validation_status"] == "failed"
    assert "champion stays" in v2.tags["gate_verdict"]
    assert "champion stays" in second.stderr
    assert "champion is version 1" in second.stderr
    # what the deploy step puts into the InferenceService's storageUri
    uri = subprocess.run(
        [sys.executable, "-m", "operations.cli", "champion-uri"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert uri.returncode == 0, uri.stderr
    assert uri.stdout.strip() == client.get_model_version(MODEL, "1").tags["storage_uri"]


def test_bad_data_fails_with_one_line_and_writes_nothing(backend, tmp_path):
    """Through the whole command: ingest's verdict is the last line. Each kind of problem and
    its message is tested on the dataset contract itself (tests/unit/test_dataset_contract.py)."""
    env, s3, bucket, state = backend
    header = [s.header for s in vocabulary().symptoms] + ["prognosis"]
    good = ["1", "1"] + ["0"] * 130 + ["Fungal infection"]
    rows = [header, good, ["7", *good[1:]], [*good[:-1], "Corona"]]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(map(",".join, rows)) + "\n")
    before = objects(s3, bucket)
    versions = len(registry(env).search_model_versions(f"name='{MODEL}'"))
    proc = run_cli(env, state, DATA_SOURCE=str(path))
    assert proc.returncode == 1
    line = last_line(proc)
    assert line == (
        f"error: ingest: invalid dataset {path}: 1 value(s) not 0/1: line 3 column"
        " 'itching' = '7' (and 1 more problem(s))"
    ), line
    assert objects(s3, bucket) == before
    assert len(registry(env).search_model_versions(f"name='{MODEL}'")) == versions


def test_unreachable_s3(backend):
    env, _, _, state = backend
    proc = run_cli(env, state, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert last_line(proc).startswith(
        "error: cannot use bucket 'symptom-dx-models': S3 at http://127.0.0.1:"
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


def test_interrupted_registrations_are_reconciled(backend, monkeypatch):
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
    client.set_model_version_tag(MODEL, orphan.version, "storage_uri", f"s3://{bucket}/{prefix}")
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


def test_ctrl_c_stops_everything(crashed, served):
    """Last: only one pipeline run's outputs stay (PIPELINE_RUNS_KEPT=1), KFP leaves no
    temporary folder, and nothing outlives Ctrl+C."""
    run_id = served.record()["run_id"]
    served.proc.send_signal(signal.SIGINT)
    code = served.proc.wait(timeout=60)
    assert code == 0, served.output[-2000:]
    assert "stopping" in served.output
    nothing_left(run_id, crashed["ports"])
    state = crashed["state"]
    assert (state / "prometheus" / "data").is_dir()  # its data lives in .state
    assert not (state / RECORD_FILE).exists()
    runs = [p for p in (state / "pipeline-root").iterdir() if p.is_dir() and p.name[0] != "."]
    assert len(runs) == 1, runs
    assert not (state / "kfp-workspace").exists()  # KFP's scratch folder is gone
    assert set(Path("/tmp").glob("kfp-workspace-*")) <= crashed["kfp_temp_before"]
