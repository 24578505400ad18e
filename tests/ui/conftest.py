"""UI fixtures: the knowledge tables, a real model server (serving.launcher) and a client."""

from __future__ import annotations

from pathlib import Path

import pytest

from symptom_dx.local.services import free_port


def start_model_server(model_dir: Path, log_dir: Path, http_port: int | None = None):
    """The project's real model server (KServe v2) on loopback (free ports unless given)."""
    try:
        from serving.launcher import start_model_server as start
    except ImportError as e:  # the UI is built against serving/'s v2 contract
        pytest.fail(f"serving.launcher.start_model_server is not available: {e}")
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
    """A model server shared by the callback tests (never stopped by them)."""
    svc = start_model_server(trained_model_dir, tmp_path_factory.mktemp("model-server-logs"))
    yield svc
    svc.stop()


@pytest.fixture
def client(model_server):
    from ui.client import ModelClient

    with ModelClient(model_server.url, timeout=10.0) as c:
        yield c
