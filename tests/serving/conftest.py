"""The predictor in this process, as KServe tests its own server (``python/kserve/test``):
the model object, KServe's FastAPI app built by ``RESTServer.create_application`` behind our
``RESTApp`` and called through ``fastapi.testclient.TestClient``, and our gRPC server on a free
loopback port. ``test_process.py`` runs the real ``python -m serving`` for what only a real
process shows."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import threading
from collections.abc import Iterator
from types import ModuleType

import grpc
import pytest
from fastapi.testclient import TestClient
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer
from testkit import REPO

from pipelines.local_stack.services import LOOPBACK, free_port
from serving.fast_path import FastPath
from serving.grpc_service import GRPCServer
from serving.model import DiseaseClassifier
from serving.rest import RESTApp
from serving.server import ModelServer
from symptom_dx.contract import MODEL_NAME

LOGGERS = ("", "kserve", "kserve.trace", "uvicorn", "uvicorn.error", "uvicorn.access", "grpc")


@pytest.fixture(scope="session")
def classifier(trained_model_dir) -> DiseaseClassifier:
    model = DiseaseClassifier(MODEL_NAME, str(trained_model_dir))
    model.load()
    return model


@pytest.fixture(scope="session")
def server(classifier) -> ModelServer:
    """Our ModelServer with the models ``python -m serving`` serves registered (the classifier
    and the parser model) and KServe's REST app built (once a process:
    ``kserve.model_server.app`` is KServe's module-level app)."""
    from serving.parser import SymptomParser

    server = ModelServer()
    server.register_model(classifier)
    parser = SymptomParser()
    parser.load()
    server.register_model(parser)
    RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        http_port=free_port(),
    ).create_application()
    return server


def _client(server: ModelServer, fast_path: bool) -> Iterator[TestClient]:
    app = RESTApp(model_server.app, server.models, fast_path=fast_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session", params=["fast-path", "kserve-path"])
def rest(request, server) -> Iterator[TestClient]:
    """The REST port, once with the JSON fast path and once with every request through
    KServe's own data plane (``--fast_path false``): tests using it run on both."""
    yield from _client(server, request.param == "fast-path")


@pytest.fixture(scope="session")
def kserve_rest(server) -> Iterator[TestClient]:
    yield from _client(server, fast_path=False)


@pytest.fixture(scope="session")
def grpc_targets(server) -> Iterator[dict[str, str]]:
    """Two of our gRPC servers on free loopback ports: "fast-path" answers ModelInfer through
    the fast path, "kserve-path" every RPC through KServe's servicer (``--fast_path false``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    models = {m.name: m for m in server.models}
    servers, serving, targets = [], [], {}
    for path in ("fast-path", "kserve-path"):
        fast = FastPath(server.models) if path == "fast-path" else None
        servicer = InferenceServicer(server.dataplane, server.model_repository_extension)
        targets[path] = f"{LOOPBACK}:{free_port()}"
        servers.append(GRPCServer(targets[path], servicer, fast, models, 4))
        serving.append(asyncio.run_coroutine_threadsafe(servers[-1].start(), loop))
        with grpc.insecure_channel(targets[path]) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
    yield targets
    for grpc_server, started in zip(servers, serving, strict=True):
        asyncio.run_coroutine_threadsafe(grpc_server.stop(0), loop).result(timeout=10)
        started.result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


@pytest.fixture(scope="session", params=["fast-path", "kserve-path"])
def grpc_target(request, grpc_targets) -> str:
    """Our gRPC server's address, once per path: tests using it run on both."""
    return grpc_targets[request.param]


class LogText(logging.Handler):
    """Everything logged while it is attached, formatted with tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._last: logging.LogRecord | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record is not self._last:  # a record reaches each logger it propagates to in turn
            self._last = record
            self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextlib.contextmanager
def _captured_logs() -> Iterator[LogText]:
    """What every logger of the server writes meanwhile (KServe's loggers do not propagate)."""
    handler = LogText()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(min(lg.level or logging.INFO, logging.INFO))
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


@pytest.fixture
def server_log() -> Iterator[LogText]:
    with _captured_logs() as handler:
        yield handler


@pytest.fixture(scope="module")
def module_log() -> Iterator[LogText]:
    with _captured_logs() as handler:
        yield handler


@pytest.fixture(scope="session")
def near_miss() -> ModuleType:
    """``bench/near_miss.py``: the near-miss request of issue 11."""
    spec = importlib.util.spec_from_file_location("near_miss", REPO / "bench" / "near_miss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
