"""A real model server (``python -m serving``) on free loopback ports, shared by the session."""

from __future__ import annotations

import pytest

from serving.launcher import start_model_server
from symptom_dx.local.services import free_port


@pytest.fixture(scope="session")
def model_server(trained_model_dir, tmp_path_factory):
    """The predictor serving the trained test model; ``.url``, ``.extra['grpc']``."""
    logs = tmp_path_factory.mktemp("model-server-logs")
    svc = start_model_server(trained_model_dir, free_port(), free_port(), logs)
    yield svc
    svc.stop()
