"""`make run`'s command end to end: train, register, serve the champion and the UI, stop.

The command starts its own S3 and MLflow servers (on free ports here), so this is exactly
what a user gets, minus the fixed default ports.
"""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from testkit import REPO

from symptom_dx.local.services import free_port, port_is_free

pytestmark = pytest.mark.integration


def test_run_trains_serves_and_stops_cleanly(data_dir, tmp_path):
    ports = {
        "MLFLOW_PORT": free_port(),
        "S3_PORT": free_port(),
        "MODEL_HTTP_PORT": free_port(),
        "MODEL_GRPC_PORT": free_port(),
        "UI_PORT": free_port(),
    }
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "DATA_DIR": str(data_dir),
        "STATE_DIR": str(tmp_path / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - read back below
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.run_local", "run"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl+C stops everything" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "make run did not get to serving in 240 s"
            time.sleep(1)
        output = (tmp_path / "run.log").read_text()
        assert "gate: no champion yet" in output
        model = f"http://127.0.0.1:{ports['MODEL_HTTP_PORT']}/v2/models/disease-classifier"
        assert f"model server  {model}" in output
        assert f"web UI        http://127.0.0.1:{ports['UI_PORT']}" in output
        body = {
            "inputs": [
                {
                    "name": "symptoms",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": ["itching, skin rash, nodal skin eruptions"],
                }
            ]
        }
        answer = httpx.post(f"{model}/infer", json=body, timeout=5).json()
        assert answer["outputs"][0]["data"][0] == "Fungal infection"
        assert httpx.get(f"http://127.0.0.1:{ports['UI_PORT']}/", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]
    assert "stopping" in (tmp_path / "run.log").read_text()
    time.sleep(1)
    assert all(port_is_free(p) for p in ports.values()), "a service outlived make run"
