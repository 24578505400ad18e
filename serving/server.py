"""KServe's ``ModelServer``, hardened for a model server anyone on the network may call.

What it adds to ``kserve.ModelServer``, each through a public KServe, Starlette or uvicorn
extension point unless said otherwise, and where each lives:

- **Listen address** (``bind_address``): KServe 0.21 binds REST to 0.0.0.0 and gRPC to [::]
  with no option. REST: the one documented override below, ``setup_event_loop``, sets the
  uvicorn config KServe has built. gRPC: ``serving.grpc_service`` serves KServe's own servicer
  on the address, in gRPC's threaded server (KServe's grpc.aio server is turned off).
- **Bounds on every connection and request** (``serving.connection``, ``serving.rest``, the
  gRPC server's options): request bodies and gRPC messages up to ``contract.MAX_BODY_BYTES``
  (413 / RESOURCE_EXHAUSTED); headers within ``header_timeout`` seconds and
  ``MAX_HEADER_BYTES``; bodies within ``body_timeout`` seconds (408); answers a client does not
  read dropped after ``write_timeout`` seconds or past ``max_buffered_output`` bytes over all
  connections. Defaults from the contract.
- **Answers, not tracebacks** (``serving.errors``): every error maps to one status on both
  protocols, and nothing is logged per rejected request but its reason code.
- **Readiness** (here): ``/v2/health/ready`` and gRPC ``ServerReady`` are false unless every
  model the server started with is loaded (KServe's are always true), and an infer request
  never loads a model implicitly.
- **Model repository extension closed by default** (here): load/unload (REST
  ``/v2/repository/models/<name>/load|unload``, gRPC ``RepositoryModelLoad|Unload``) answer
  403 / PERMISSION_DENIED unless ``allow_repository_changes``; with it, unload then load works.
- The JSON fast path (``serving.fast_path``) in front of KServe's FastAPI app, unless
  ``fast_path=False``; per-request log lines off unless asked for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kserve import model_server
from kserve.constants.constants import PredictorProtocol
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model import BaseKServeModel
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from serving.connection import limited_http_protocol
from serving.errors import RepositoryChangesDisabled
from serving.fast_path import FastPath
from serving.grpc_service import GRPCServer
from serving.model import DiseaseClassifier
from serving.protocol import RequestRejected
from serving.rest import RESTApp
from symptom_dx.contract import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BUFFERED_OUTPUT_BYTES,
    WRITE_TIMEOUT_S,
)
from symptom_dx.settings import LOOPBACK

logger = logging.getLogger("kserve")


# -- the models, readiness and the repository extension ----------------------------------------
class ServedModels(ModelRepository):
    """KServe's model registry, remembering the models the server started with so that
    ``load`` (the repository extension's) can bring an unloaded one back."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, BaseKServeModel] = {}

    def update(self, model: BaseKServeModel, name: str | None = None) -> None:
        super().update(model, name)
        self.started.setdefault(name or model.name, model)

    def load(self, name: str) -> bool:
        model = self.started[name]
        model.load()
        self.update(model, name)
        return model.ready


class ServingDataPlane(DataPlane):
    """KServe's data plane; ready only while every started model is loaded, no implicit
    loading, and request decoding that fails says so without quoting the request."""

    @property
    def served(self) -> ServedModels:
        return self.model_registry

    async def ready(self) -> bool:
        started = self.served.started
        if not started or not await super().ready():
            return False
        return all([await self.served.is_model_ready(name) for name in started])

    async def get_model(self, name: str) -> BaseKServeModel:
        model = self.get_model_from_registry(name)
        if not await self.served.is_model_ready(name):
            raise ModelNotReady(name)
        return model

    def decode(
        self,
        body: Any,
        headers: Any,
        protocol_version: str = PredictorProtocol.REST_V1.value,
        model_name: str | None = None,
    ) -> tuple[Any, dict]:
        try:
            return super().decode(body, headers, protocol_version, model_name)
        except RequestRejected:
            raise
        except InvalidInput as e:  # KServe's message for the client
            v2 = protocol_version == PredictorProtocol.REST_V2.value
            reason = "bad_input" if v2 else "malformed_json"  # v1: the body is not JSON
            raise RequestRejected(reason, f"malformed request: {e}") from None
        except Exception:  # binary tensors and CloudEvents fail in many ways, some quoting data
            if protocol_version == PredictorProtocol.REST_V2.value:
                raise RequestRejected(
                    "bad_input",
                    "cannot decode the binary tensor request: check the JSON header "
                    "(Inference-Header-Content-Length), each input's binary_data_size, "
                    "shape and datatype, and that BYTES elements are UTF-8",
                ) from None
            raise RequestRejected("malformed_json", "malformed request body") from None


class RepositoryExtension(ModelRepositoryExtension):
    """KServe's model repository extension, closed unless ``allow_changes``."""

    def __init__(self, models: ServedModels, allow_changes: bool):
        super().__init__(model_registry=models)
        self.models = models
        self.allow_changes = allow_changes

    def _check(self, model_name: str) -> None:
        if not self.allow_changes:
            raise RepositoryChangesDisabled()
        if model_name not in self.models.started:
            raise ModelNotFound(model_name)

    async def load(self, model_name: str) -> dict:
        self._check(model_name)
        try:
            await super().load(model_name)
        except ModelNotReady as e:  # its text quotes the load error: log it, answer without
            logger.error("could not load %s: %s", model_name, e)
            raise ModelNotReady(model_name) from None
        return {"name": model_name, "load": True}  # what KServe's gRPC servicer reads

    async def unload(self, model_name: str) -> dict:
        self._check(model_name)
        await super().unload(model_name)
        return {"name": model_name, "unload": True}


# -- the server ------------------------------------------------------------------------------------
class ModelServer(model_server.ModelServer):
    """``kserve.ModelServer`` with the additions of this module's docstring."""

    def __init__(
        self,
        *,
        bind_address: str = LOOPBACK,
        access_log: bool = False,
        fast_path: bool = True,
        allow_repository_changes: bool = False,
        header_timeout: float = HEADER_TIMEOUT_S,
        body_timeout: float = BODY_TIMEOUT_S,
        write_timeout: float = WRITE_TIMEOUT_S,
        max_buffered_output: int = MAX_BUFFERED_OUTPUT_BYTES,
        enable_grpc: bool = True,
        **kwargs: Any,
    ):
        super().__init__(registered_models=ServedModels(), enable_grpc=False, **kwargs)
        if self.workers != 1:
            raise ValueError("this server runs one worker per process: scale with replicas")
        self.bind_address = bind_address
        self.access_log = access_log
        self.fast_path = fast_path
        self.http_protocol = limited_http_protocol(
            header_timeout, body_timeout, write_timeout, max_buffered_output
        )
        self.serve_grpc = enable_grpc
        self.dataplane = ServingDataPlane(model_registry=self.registered_models)
        self.model_repository_extension = RepositoryExtension(
            self.registered_models, allow_repository_changes
        )
        self.grpc_server: GRPCServer | None = None
        self._grpc_stopping: asyncio.Task | None = None
        if not (self.enable_latency_logging or access_log):
            # KServe's timing middleware logs a line per request at INFO on this logger.
            logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        if not access_log:
            # uvicorn logs each request when this logger has handlers (KServe configures one).
            access = logging.getLogger("uvicorn.access")
            access.handlers.clear()
            access.propagate = False

    @property
    def models(self) -> list[DiseaseClassifier]:
        models = self.registered_models.get_models().values()
        return [m for m in models if isinstance(m, DiseaseClassifier)]

    def rest_app(self) -> RESTApp:
        """What the REST port serves: KServe's FastAPI app (``kserve.model_server.app``, once
        ``RESTServer.create_application`` has built it) behind limits and the fast path."""
        return RESTApp(model_server.app, self.models, self.fast_path)

    def setup_event_loop(self) -> None:
        """KServe's ``start`` calls this once it has registered the models and built its REST
        server, and serves ``self.servers`` right after: the one point to set what uvicorn
        serves and where, and to add our gRPC server."""
        super().setup_event_loop()
        config = self._rest_server.config  # KServe's uvicorn.Config (host 0.0.0.0)
        config.host = self.bind_address
        config.http = self.http_protocol
        config.app = self.rest_app()
        if self.serve_grpc:
            host = "[::]" if self.bind_address in ("0.0.0.0", "::") else self.bind_address
            self.grpc_server = GRPCServer(
                f"{host}:{self.grpc_port}",
                InferenceServicer(self.dataplane, self.model_repository_extension),
                FastPath(self.models) if self.fast_path else None,
                {m.name: m for m in self.models},
                self.max_threads,
                self.access_log,
            )
            self.servers.append(self.grpc_server.start())

    def stop(self, sig: int) -> None:
        super().stop(sig)
        if self.grpc_server is not None:
            self._grpc_stopping = asyncio.create_task(self.grpc_server.stop(self.grace_period))
