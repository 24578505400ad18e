"""`make run`'s command as a subprocess, for the tests that run it (test_make_run*.py).

The command starts its own S3, MLflow, Prometheus and Alertmanager (on free ports here), so
this is exactly what a user gets, minus the fixed default ports.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from testkit import REPO

from pipelines.local_stack.lifecycle import RECORD_FILE, processes_of
from pipelines.local_stack.services import free_port, port_is_free
from pipelines.run_local import PORT_VARIABLES

SERVING = "Ctrl+C stops everything"
PIPELINE = "running pipeline"


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


def free_ports() -> dict[str, int]:
    """A free loopback port for each of ``PORT_VARIABLES``."""
    return {name: free_port() for name in PORT_VARIABLES}


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
