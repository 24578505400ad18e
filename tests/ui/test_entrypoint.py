"""``python -m ui`` (the Dockerfile's entrypoint) as a real process with a real model server:
settings, page, metrics, free text read by the model server's parser model (no Korean analyser
in the page, which fits its pod's memory), and no symptom text in either log whatever a client
sends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import yaml
from kserve import InferenceGRPCClient, InferInput, InferRequest
from testkit import REPO

from pipelines.local_stack.services import free_port
from pipelines.local_stack.ui_server import start_ui
from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME

pytestmark = pytest.mark.integration


def test_without_a_data_folder_it_says_what_to_set(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ui"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "SYMPTOM_DX_UI_DATA_DIR" in done.stderr


@pytest.fixture(scope="module")
def ui(model_server, data_dir, tmp_path_factory):
    svc = start_ui(model_server.url, free_port(), data_dir, tmp_path_factory.mktemp("ui-logs"))
    yield svc
    svc.stop()


def test_page_api_and_metrics(ui):
    from gradio_client import Client

    page = httpx.get(ui.url, timeout=5)
    assert page.status_code == 200
    client = Client(ui.url, verbose=False, download_files=False)
    server_line, status, *_ = client.predict(
        ["itching", "skin_rash", "nodal_skin_eruptions"], "en", api_name="/diagnose"
    )
    assert server_line == "Model server: ready."
    assert status == ""
    metrics = httpx.get(f"{ui.url}/metrics", timeout=5).text
    assert 'symptom_dx_ui_requests_total{action="diagnose",outcome="ok"} 1.0' in metrics
    assert (
        'symptom_dx_ui_backend_request_duration_seconds_count{call="infer",outcome="ok"} 1.0'
        in metrics
    )
    log = ui.log_path.read_text()
    assert "nodal_skin_eruptions" not in log  # symptom payloads are never logged


MARKER = "zzqx secret complaint"


def _plant_in_the_model_server(url: str, grpc_target: str) -> None:
    """The marker through REST JSON, REST binary (not UTF-8), v1 and gRPC."""
    infer = f"{url}/v2/models/{MODEL_NAME}/infer"
    assert httpx.post(infer, json=contract.infer_request([[MARKER]])).status_code == 400
    v1 = f"{url}/v1/models/{MODEL_NAME}:predict"
    assert httpx.post(v1, json={"instances": [[MARKER]]}).status_code == 400
    tensor = InferInput("symptoms", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([MARKER.encode() + b"\xff"], np.object_), binary_data=True)
    body, length = InferRequest(model_name=MODEL_NAME, infer_inputs=[tensor]).to_rest()
    headers = {"inference-header-content-length": str(length)}
    assert httpx.post(infer, content=body, headers=headers).status_code == 400

    async def grpc_call():
        request = InferRequest(
            model_name=MODEL_NAME, infer_inputs=[InferInput("symptoms", [1], "BYTES", [MARKER])]
        )
        async with InferenceGRPCClient(grpc_target, retries=0, timeout=10) as client:
            with pytest.raises(Exception, match="unknown symptom"):
                await client.infer(request)

    asyncio.run(grpc_call())


def test_no_symptom_text_in_any_log(ui, model_server):
    from gradio_client import Client

    client = Client(ui.url, verbose=False, download_files=False)
    # values the picker does not offer, free text, a language that does not exist
    client.predict([MARKER, "itching"], "en", api_name="/diagnose")
    client.predict([MARKER], "ko", api_name="/diagnose")
    client.predict(MARKER, [MARKER], MARKER, api_name="/free_text")
    client.predict(f"{MARKER} 머리가 아프고 {MARKER}이 없어요", [], "ko", api_name="/free_text")
    client.predict(MARKER, api_name="/clear")
    _plant_in_the_model_server(model_server.url, model_server.extra["grpc"])
    time.sleep(0.5)
    for log in (ui.log_path, model_server.log_path):
        text = log.read_text()
        assert MARKER not in text and "zzqx" not in text, log
        assert "Traceback" not in text, log


def _memory_limit_mib() -> float:
    manifest = yaml.safe_load((REPO / "manifests/ui/deployment.yaml").read_text())
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith(("Mi", "Gi")), limit
    return float(limit[:-2]) * (1024 if limit.endswith("Gi") else 1)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_free_text_is_read_by_the_model_server_and_the_page_fits_its_pod(ui):
    """The page reads English and Korean sentences with a negation through the model server's
    parser model, loads no Korean analyser (Kiwi) of its own, and stays well inside the pod's
    memory limit."""
    from gradio_client import Client

    client = Client(ui.url, verbose=False, download_files=False)
    chosen, message, box = client.predict(
        "머리가 아프고 토했어요, 열은 없어요", ["high_fever"], "en", api_name="/free_text"
    )
    assert (chosen, box) == (["headache", "vomiting"], "")
    assert "Understood: Headache, Vomiting." in message
    assert "You said you do not have: High fever." in message
    english = "I've been throwing up and have a bad headache but no fever"
    chosen, message, _ = client.predict(english, [], "ko", api_name="/free_text")
    assert chosen == ["vomiting", "headache"]
    assert "인식한 증상: 구토, 두통." in message and "없다고 한 증상: 고열." in message
    metrics = httpx.get(f"{ui.url}/metrics", timeout=5).text
    assert 'symptom_dx_ui_backend_request_duration_seconds_count{call="parse",outcome="ok"}' in (
        metrics
    )
    with open(f"/proc/{ui.proc.pid}/maps") as maps:
        assert "kiwipiepy" not in maps.read(), "the page loaded a Korean analyser"
    rss, limit = _rss_mib(ui.proc.pid), _memory_limit_mib()
    assert rss < 0.8 * limit, f"the UI uses {rss:.0f} MiB, its pod may use {limit:.0f} MiB"
