"""`make run`'s command end to end: train, register, serve the champion, the UI and the
monitoring, stop; and stopped the hard ways (SIGTERM mid-pipeline, SIGKILL), nothing stays.

The command starts its own S3, MLflow, Prometheus and Alertmanager (on free ports here), so
this is exactly what a user gets, minus the fixed default ports.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from testkit import REPO

from symptom_dx.local.lifecycle import RECORD_FILE, alive, processes_of
from symptom_dx.local.services import free_port, port_is_free

pytestmark = pytest.mark.integration
SERVING = "Ctrl+C stops everything"
PIPELINE = "running pipeline"
PORTS = (
    "MLFLOW_PORT",
    "S3_PORT",
    "MODEL_HTTP_PORT",
    "MODEL_GRPC_PORT",
    "UI_PORT",
    "PROMETHEUS_PORT",
    "ALERTMANAGER_PORT",
)


class MakeRun:
    """`python -m pipelines.run_local run` (what `make run` runs) as a subprocess."""

    def __init__(self, data_dir: Path, state: Path, ports: dict[str, int], **env: str):
        self.state, self.ports = state, ports
        self.log_path = state.parent / f"run-{len(list(state.parent.glob('run-*.log')))}.log"
        self.env = {
            **os.environ,
            **{k: str(v) for k, v in ports.items()},
            "DATA_DIR": str(data_dir),
            "STATE_DIR": str(state),
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_INTERVAL": "1s",
            **env,
        }

    def __enter__(self) -> "MakeRun":
        self.log = open(self.log_path, "w+")  # closed in __exit__
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.run_local", "run"],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, self.output[-3000:]
            assert time.monotonic() < deadline, f"no '{text}' in {timeout:.0f} s"
            time.sleep(0.5)

    def record(self) -> dict:
        return json.loads((self.state / RECORD_FILE).read_text())

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in PORTS}


def nothing_left(run_id: str, ports: dict[str, int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while processes_of(run_id) or not all(port_is_free(p) for p in ports.values()):
        assert time.monotonic() < deadline, (
            f"left behind: {processes_of(run_id)}, ports in use:"
            f" {[k for k, p in ports.items() if not port_is_free(p)]}"
        )
        time.sleep(0.5)


def infer(model_url: str, symptoms: str) -> httpx.Response:
    body = {"inputs": [{"name": "symptoms", "datatype": "BYTES", "shape": [1], "data": [symptoms]}]}
    return httpx.post(f"{model_url}/v2/models/disease-classifier/infer", json=body, timeout=5)


def prometheus(url: str, path: str, **params: str) -> dict:
    answer = httpx.get(f"{url}/api/v1/{path}", params=params, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def test_run_trains_serves_monitors_and_stops_cleanly(data_dir, tmp_path, ports):
    with MakeRun(data_dir, tmp_path / "state", ports) as run:
        try:
            run.wait_for(SERVING)
            output = run.output
            assert "gate: no champion yet" in output
            model = run.url("MODEL_HTTP_PORT")
            assert f"model server  {model}/v2/models/disease-classifier" in output
            assert f"web UI        {run.url('UI_PORT')}" in output
            prom = run.url("PROMETHEUS_PORT")
            assert f"Prometheus    {prom}" in output
            assert f"Alertmanager  {run.url('ALERTMANAGER_PORT')}" in output

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
            assert httpx.get(run.url("UI_PORT"), timeout=5).status_code == 200

            # every target up, every rule evaluated without error, the patients counted
            counted = "model_name:disease_classifier_patients:increase1h"
            deadline = time.monotonic() + 30
            while True:
                targets = prometheus(prom, "targets")["activeTargets"]
                groups = prometheus(prom, "rules")["groups"]
                patients = prometheus(prom, "query", query=counted)["result"]
                if (
                    all(t["health"] == "up" for t in targets)
                    and all(
                        r.get("lastEvaluation", "0001")[:4] != "0001"
                        for g in groups
                        for r in g["rules"]
                    )
                    and patients
                    and float(patients[0]["value"][1]) >= 10
                ):
                    break
                assert time.monotonic() < deadline, (targets, groups, patients)
                time.sleep(0.5)
            assert {t["labels"]["job"] for t in targets} == {
                "kserve-inference/disease-classifier",
                "kserve-inference/symptom-dx-ui",
                "mlflow/mlflow",
            }
            rules = [r for g in groups for r in g["rules"]]
            assert all(r["health"] == "ok" for r in rules), rules
            assert {g["name"] for g in groups} >= {"symptom-dx.serving", "symptom-dx.drift"}
            drift = "model_name:disease_classifier_input_drift:tvd1h"
            assert prometheus(prom, "query", query=drift)["result"]
            am = httpx.get(f"{run.url('ALERTMANAGER_PORT')}/api/v2/status", timeout=5)
            assert am.status_code == 200
            run_id = run.record()["run_id"]
        finally:
            run.proc.send_signal(signal.SIGINT)
            code = run.proc.wait(timeout=60)
        assert code == 0, run.output[-2000:]
        assert "stopping" in run.output
    nothing_left(run_id, ports)
    state = tmp_path / "state"
    assert (state / "prometheus" / "data").is_dir()  # its data lives in .state
    assert not (state / RECORD_FILE).exists()
    assert not (state / "kfp-workspace").exists()  # KFP's scratch folder is gone


def test_sigterm_during_the_pipeline_stops_everything(data_dir, tmp_path, ports):
    with MakeRun(data_dir, tmp_path / "state", ports) as run:
        run.wait_for(PIPELINE, timeout=120)
        run_id = run.record()["run_id"]
        servers = {p.command.split()[0] for p in processes_of(run_id)}
        assert {"weed", "python"} <= servers, servers  # S3, MLflow, the pipeline
        run.proc.send_signal(signal.SIGTERM)
        code = run.proc.wait(timeout=60)
        assert code == 130, run.output[-2000:]
        assert "interrupted" in run.output
    nothing_left(run_id, ports)


def test_sigkill_leaves_nothing_and_the_next_run_takes_over(data_dir, tmp_path, ports):
    """SIGKILL of the run and of its reaper mid-pipeline: the next run on the same state
    finds the leftovers, stops them, says so, and works. SIGKILL of that run while it
    serves: its reaper stops everything. Only one pipeline run's outputs stay
    (PIPELINE_RUNS_KEPT=1), and KFP leaves no temporary folder."""
    state = tmp_path / "state"
    kfp_temp_before = set(Path("/tmp").glob("kfp-workspace-*"))
    with MakeRun(data_dir, state, ports, PIPELINE_RUNS_KEPT="1") as first:
        first.wait_for(PIPELINE, timeout=120)
        record = first.record()
        os.kill(record["reaper"], signal.SIGKILL)
        first.proc.kill()
        first.proc.wait()
        deadline = time.monotonic() + 10
        while alive(record["reaper"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    left = processes_of(record["run_id"])
    assert left, "nothing left to take over"
    assert not port_is_free(ports["S3_PORT"])

    with MakeRun(data_dir, state, ports, PIPELINE_RUNS_KEPT="1") as second:
        second.wait_for(SERVING)
        assert f"stopped {len(left)} processes an earlier run left" in second.output
        assert "is in use" not in second.output
        assert processes_of(record["run_id"]) == []
        assert infer(second.url("MODEL_HTTP_PORT"), "cough, high fever").status_code == 200
        run_id = second.record()["run_id"]
        assert len(processes_of(run_id)) >= 6  # S3, MLflow (2), model server, UI, Prometheus...
        second.proc.kill()
        second.proc.wait()
    nothing_left(run_id, ports)
    # the reaper says what it did after it stopped everything: give it a moment to write
    reaper_log = state / "logs" / "reaper.log"
    deadline = time.monotonic() + 10
    while "ended without stopping" not in (reaper_log.read_text() if reaper_log.exists() else ""):
        assert time.monotonic() < deadline, "the reaper did not report"
        time.sleep(0.2)
    runs = [p for p in (state / "pipeline-root").iterdir() if p.is_dir() and p.name[0] != "."]
    assert len(runs) == 1, runs
    assert not (state / "kfp-workspace").exists()
    assert set(Path("/tmp").glob("kfp-workspace-*")) <= kfp_temp_before
