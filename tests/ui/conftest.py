"""UI fixtures: the knowledge tables; a ``ModelClient`` whose transport answers the v2 calls
in this process with the model server's own code (``httpx.MockTransport``); and, for the
integration tests, the real model server (``pipelines.local_stack.model_server``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from pipelines.local_stack.services import free_port
from symptom_dx.contract import MODEL_NAME


def start_model_server(model_dir: Path, log_dir: Path, http_port: int | None = None):
    """The project's real model server (KServe v2) on loopback (free ports unless given)."""
    from pipelines.local_stack.model_server import start_model_server as start

    return start(model_dir, http_port or free_port(), free_port(), log_dir, {})


@pytest.fixture(scope="session")
def model_server_starter():
    """``start(model_dir, log_dir, http_port=None) -> Service``, for tests that stop theirs."""
    return start_model_server


@pytest.fixture(scope="session")
def knowledge(data_dir):
    from symptom_dx.knowledge import load_knowledge

    return load_knowledge(data_dir)


@pytest.fixture(scope="session")
def model_server(trained_model_dir, tmp_path_factory):
    """A real model server, for the tests that run the UI as a process."""
    svc = start_model_server(trained_model_dir, tmp_path_factory.mktemp("model-server-logs"))
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def v2_transport(trained_model_dir) -> httpx.MockTransport:
    """The two calls the UI makes (model ready, infer), answered by the predictor's own
    ``DiseaseClassifier`` and JSON fast path in this process: no port, no subprocess."""
    from serving.fast_path import FastPath
    from serving.model import DiseaseClassifier

    model = DiseaseClassifier(MODEL_NAME, str(trained_model_dir))
    model.load()
    fast = FastPath([model])

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == f"/v2/models/{MODEL_NAME}/ready":
            return httpx.Response(200, json={"name": MODEL_NAME, "ready": True})
        if request.method == "POST" and path == f"/v2/models/{MODEL_NAME}/infer":
            status, body = asyncio.run(fast.answer(model, request.content))
            json_type = {"content-type": "application/json"}
            return httpx.Response(status, content=body, headers=json_type)
        return httpx.Response(404, json={"error": "Not Found"})

    return httpx.MockTransport(answer)


@pytest.fixture
def client(v2_transport):
    from ui.client import ModelClient

    with ModelClient("http://model-server", timeout=10.0, transport=v2_transport) as c:
        yield c


@pytest.fixture(scope="session")
def served_client(model_server):
    """A ``ModelClient`` of the real model server: the page's free text is read by its parser
    model (``symptom-parser``)."""
    from ui.client import ModelClient

    with ModelClient(model_server.url, timeout=10.0) as c:
        yield c
