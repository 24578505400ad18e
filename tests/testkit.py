"""Constants and helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from symptom_dx.candidates import DEFAULT_CANDIDATE

REPO = Path(__file__).resolve().parents[1]
S3_ACCESS_KEY = "test-access-key"
S3_SECRET_KEY = "test-secret-key-0123456789"

# The tests' usual patient: a fungal infection's pattern, as symptom ids and as one names
# element.
FUNGAL_IDS = ["itching", "skin_rash", "nodal_skin_eruptions"]
FUNGAL = ", ".join(FUNGAL_IDS)
# Misspelt names, each matched to a different symptom: one more than the event loop matches
# (serving.symptom_inputs.INLINE_FUZZY_MATCHES), so a request of all nine goes to the worker.
MISSPELT = (
    "itchng",
    "skin rsh",
    "vomitting",
    "coughh",
    "headach",
    "chils",
    "fatige",
    "nauseaa",
    "joint pian",
)


def s3_env(s3_url: str, bucket: str) -> dict[str, str]:
    """The environment through which every part of the system finds the S3 server."""
    return {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "S3_VERIFY_SSL": "0",
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "SYMPTOM_DX_BUCKET": bucket,
    }


# The pipeline's default candidate alone: where a test checks what a run does (the gate, the
# steps in an image), not which candidate wins, one candidate is the same check for less work.
DEFAULT_CANDIDATE_ONLY = (f"algorithms={DEFAULT_CANDIDATE}",)


def _pipeline_argv(params: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "pipelines.run_local", "train", *params]


def run_pipeline_command(
    env: dict[str, str], timeout: float, params: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """`python -m pipelines.run_local train [NAME=VALUE...]` in the checkout, with ``env`` as its
    environment."""
    return subprocess.run(
        _pipeline_argv(params), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


class PipelineCommand:
    """``run_pipeline_command`` started in the background (its output in files, which never
    fill up as a pipe does); ``wait`` gives the same CompletedProcess."""

    def __init__(self, env: dict[str, str], output_dir: Path, params: tuple[str, ...] = ()):
        self.argv = _pipeline_argv(params)
        self.out, self.err = output_dir / "stdout", output_dir / "stderr"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def wait(self, timeout: float) -> subprocess.CompletedProcess:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return subprocess.CompletedProcess(
            self.argv, code, self.out.read_text(), self.err.read_text()
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cluster_setting(*names: str) -> list[str]:
    """Values of scripts/cluster/lib.sh, which defines every path of the cluster once."""
    echo = "; ".join(f'echo "${name}"' for name in names)
    out = subprocess.run(
        ["bash", "-c", f'source "$0"; {echo}', str(REPO / "scripts" / "cluster" / "lib.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


# Debian's Chromium, as the browser tests run it (root, headless, no calls home)
# The tests poll Prometheus often: one client, not a new TLS context per query.
_PROMETHEUS_CLIENT = None


def prometheus(url: str, path: str, **params: str) -> Any:
    """``data`` of Prometheus' HTTP API answer to GET /api/v1/<path> (its status checked)."""
    global _PROMETHEUS_CLIENT
    import httpx

    if _PROMETHEUS_CLIENT is None:
        _PROMETHEUS_CLIENT = httpx.Client(timeout=5)
    answer = _PROMETHEUS_CLIENT.get(f"{url}/api/v1/{path}", params=params).json()
    assert answer["status"] == "success", (path, answer)
    return answer["data"]


CHROMIUM = "/usr/bin/chromium"
_CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium_page(profile: Path, width: int, timeout_ms: int) -> Iterator[Any]:
    """A page of headless Chromium with a fresh user-data-dir (Playwright drives Debian's
    browser; nothing is downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=_CHROMIUM_FLAGS,
            viewport={"width": width, "height": 1000},
        )
        context.set_default_timeout(timeout_ms)
        try:
            yield context.new_page()
        finally:
            context.close()
