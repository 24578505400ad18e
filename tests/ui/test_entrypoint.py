"""``python -m ui`` (the Dockerfile's entrypoint) as a real process with a real model server:
settings, page, metrics, and no symptom text in either log whatever a client sends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest

from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME
from symptom_dx.local.services import free_port
from ui.launcher import start_ui

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
    client.predict(MARKER, api_name="/clear")
    _plant_in_the_model_server(model_server.url, model_server.extra["grpc"])
    time.sleep(0.5)
    for log in (ui.log_path, model_server.log_path):
        text = log.read_text()
        assert MARKER not in text and "zzqx" not in text, log
        assert "Traceback" not in text, log
