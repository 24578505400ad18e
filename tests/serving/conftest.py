"""A real model server (``python -m serving``) on free loopback ports, shared by the session."""

from __future__ import annotations

import pytest

from serving.launcher import start_model_server
from symptom_dx.local.services import free_port


@pytest.fixture(scope="session", params=["fast-path", "kserve-path"])
def model_server(request, trained_model_dir, tmp_path_factory):
    """The predictor serving the trained test model; ``.url``, ``.extra['grpc']``.

    Every test runs twice: with the JSON fast path (the default) and with every request
    through KServe's own FastAPI app (``--fast_path false``), so both answer alike.
    """
    logs = tmp_path_factory.mktemp("model-server-logs")
    extra = ["--fast_path", "false"] if request.param == "kserve-path" else []
    svc = start_model_server(trained_model_dir, free_port(), free_port(), logs, extra_args=extra)
    yield svc
    svc.stop()
