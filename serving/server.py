"""KServe's ``ModelServer``, hardened for a model server anyone on the network may call.

What it adds to ``kserve.ModelServer``, each through a public KServe, Starlette or uvicorn
extension point unless said otherwise:

- **Listen address** (``bind_address``): KServe 0.21 binds REST to 0.0.0.0 and gRPC to [::]
  with no option. REST: the one documented override below, ``setup_event_loop``, sets the
  uvicorn config KServe has built. gRPC: ``GRPCServer`` here serves KServe's own servicer on
  the address (KServe's gRPC server is turned off).
- **Limits on every route**: request bodies (FastAPI's ``max_body_size`` on KServe's app, and
  the same limit on the fast path) and gRPC messages up to ``contract.MAX_BODY_BYTES``, else
  413 / RESOURCE_EXHAUSTED; request headers must arrive within
  ``header_timeout`` seconds and ``MAX_HEADER_BYTES`` (uvicorn only times idle keep-alive
  connections: a client that connects and stalls is otherwise kept forever), both from the
  contract.
- **Answers, not tracebacks**: every error maps to one status (``error_status``) on both
  protocols: bad input 400 / INVALID_ARGUMENT with the message, unknown model 404 / NOT_FOUND,
  ... and only a bug is a 500 / INTERNAL, whose body says nothing of the exception. Nothing
  is logged per rejected request but its reason code (KServe's handlers log each request error
  with its text, which names symptoms, and a traceback). Undecodable gRPC messages are
  INVALID_ARGUMENT too.
- **Readiness**: ``/v2/health/ready`` and gRPC ``ServerReady`` are false unless every model the
  server started with is loaded (KServe's are always true), and an infer request never loads a
  model implicitly.
- **Model repository extension closed by default**: load/unload (REST
  ``/v2/repository/models/<name>/load|unload``, gRPC ``RepositoryModelLoad|Unload``) answer
  403 / PERMISSION_DENIED unless ``allow_repository_changes``; with it, unload then load works.
- The JSON fast path (``serving.fast_path``) in front of KServe's FastAPI app, unless
  ``fast_path=False``; per-request log lines off unless asked for.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from google.protobuf.message import DecodeError
from grpc import StatusCode, aio
from kserve import model_server
from kserve.constants.constants import PredictorProtocol
from kserve.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from kserve.model import BaseKServeModel
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.fast_path import JSON_HEADERS, FastPath
from serving.model import DiseaseClassifier
from serving.protocol import RequestRejected
from symptom_dx.contract import HEADER_TIMEOUT_S, MAX_BODY_BYTES, MAX_HEADER_BYTES
from symptom_dx.local.services import LOOPBACK

logger = logging.getLogger("kserve")

INTERNAL_ERROR = "internal server error"
_MAX_MESSAGE_CHARS = 1000  # of an error message from KServe, which may quote the request
SERVED_ROUTES = (
    "this server answers GET /v2/health/live, /v2/health/ready, /v2/models/{name}, "
    "/v2/models/{name}/ready and POST /v2/models/{name}/infer, /v1/models/{name}:predict"
)


class RepositoryChangesDisabled(Exception):
    """A load or unload through the model repository extension, which is closed."""

    def __str__(self) -> str:
        return (
            "model repository changes are disabled on this server "
            "(start it with --allow_repository_changes true to enable load and unload)"
        )


def error_status(error: BaseException) -> tuple[int, StatusCode, str]:
    """(HTTP status, gRPC code, message) of an error raised while answering a request."""
    message = str(getattr(error, "detail", error))[:_MAX_MESSAGE_CHARS]
    if isinstance(error, InvalidInput):  # RequestRejected and KServe's own
        return 400, StatusCode.INVALID_ARGUMENT, message
    if isinstance(error, ModelNotFound):
        return 404, StatusCode.NOT_FOUND, message
    if isinstance(error, RepositoryChangesDisabled):
        return 403, StatusCode.PERMISSION_DENIED, message
    if isinstance(error, ModelNotReady | ServerNotReady | ServerNotLive):
        return 503, StatusCode.UNAVAILABLE, message
    if isinstance(error, NotImplementedError | UnsupportedProtocol):
        # KServe's routes for what this server does not serve (model versions, :explain): a
        # route that is not here, named with the ones that are
        return 404, StatusCode.UNIMPLEMENTED, f"{message.rstrip('.')}; {SERVED_ROUTES}"
    if isinstance(error, HTTPException):  # 404 for unknown routes, 413 for large bodies, ...
        if error.status_code == 413:
            message = f"request body larger than {MAX_BODY_BYTES} bytes"
        return error.status_code, StatusCode.UNKNOWN, message
    # A bug: its stack goes to the log, its text (which may quote a request) nowhere.
    stack = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    logger.error("internal error %s, raised at\n%s", type(error).__name__, stack.rstrip())
    return 500, StatusCode.INTERNAL, INTERNAL_ERROR


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


# -- REST ------------------------------------------------------------------------------------------
class RESTApp:
    """The REST port's ASGI app: the fast path (if on), else KServe's FastAPI app with our
    error handlers and body limit (set at the first call, once KServe has built the app)."""

    def __init__(
        self, app: FastAPI, models: Iterable[DiseaseClassifier], fast_path: bool = True
    ) -> None:
        models = list(models)
        self.app = app
        self.models = {m.name: m for m in models}
        self.fast = FastPath(models) if fast_path else None
        self._configured = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._configured:
            self._configure()
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if _declared_length(scope) > MAX_BODY_BYTES:
            self._count_too_large(scope["path"])
            return await _send_json(send, *_error_body(HTTPException(413)))
        model = self.fast.model_for(scope) if self.fast else None
        if model is None:
            return await self.app(scope, receive, send)
        try:
            body = await _read_body(receive, MAX_BODY_BYTES)
            if body is None:  # the client went away
                return
            status, payload = await self.fast.answer(model, body)
        except HTTPException as e:  # the body passed the limit
            self._count_too_large(scope["path"])
            status, payload = _error_body(e)
        except Exception as e:  # a bug: 500 without its text
            status, payload = _error_body(e)
        await _send_json(send, status, payload)

    def _configure(self) -> None:
        self._configured = True
        if getattr(self.app.state, "serving_configured", False):  # by another RESTApp
            return
        if self.app.middleware_stack is not None:
            raise RuntimeError("KServe's app already answered requests with its own handlers")
        self.app.state.serving_configured = True
        self.app.max_body_size = MAX_BODY_BYTES
        for error in (
            Exception,
            HTTPException,
            InferenceError,
            InvalidInput,
            ModelNotFound,
            ModelNotReady,
            NotImplementedError,
            RepositoryChangesDisabled,
            ServerNotLive,
            ServerNotReady,
            UnsupportedProtocol,
        ):
            self.app.add_exception_handler(error, self._on_error)
        self.app.add_exception_handler(RequestValidationError, self._on_validation_error)

    def _count_too_large(self, path: str) -> None:
        if model := self.models.get(_served_name(path)):
            model.reject(RequestRejected("body_too_large", "request body too large"))

    async def _on_error(self, request: Request, error: Exception) -> Response:
        if isinstance(error, HTTPException) and error.status_code == 413:
            self._count_too_large(request.url.path)
        elif isinstance(error, RequestRejected) and (model := self._model_of(request)):
            model.reject(error)
        status, payload = _error_body(error)
        return Response(payload, status_code=status, media_type="application/json")

    async def _on_validation_error(
        self, request: Request, error: RequestValidationError
    ) -> Response:
        """A body that is not a v2 request (FastAPI's 422): 400 as the fast path says it."""
        model = self._model_of(request)
        body = error.body
        if model is not None:
            try:
                model.decode_json(_as_json_bytes(body))
            except RequestRejected as e:
                return await self._on_error(request, e)
        fields = "; ".join(".".join(map(str, e.get("loc", ()))) for e in error.errors())
        rejected = RequestRejected("malformed_json", f"malformed request: check {fields}")
        return await self._on_error(request, rejected)

    def _model_of(self, request: Request) -> DiseaseClassifier | None:
        return self.models.get(request.path_params.get("model_name", ""))


def _as_json_bytes(body: Any) -> bytes:
    """The body FastAPI failed to validate (raw text, or the JSON value it parsed) as JSON."""
    if isinstance(body, bytes | str):
        return body.encode() if isinstance(body, str) else body
    try:
        return orjson.dumps(body)
    except TypeError:
        return b""


def _error_body(error: BaseException) -> tuple[int, bytes]:
    status, _, message = error_status(error)
    return status, orjson.dumps({"error": message})


_MODEL_ROUTE = re.compile(r"/v2/models/([^/]+)/infer|/v1/models/([^/:]+):predict")


def _served_name(path: str) -> str:
    """The model name in an infer or predict path ("" for any other path)."""
    match = _MODEL_ROUTE.fullmatch(path)
    return (match.group(1) or match.group(2)) if match else ""


def _declared_length(scope: Scope) -> int:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None on disconnect; HTTPException 413 past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline and a size limit on each request's headers.

    The deadline is armed when a connection opens, and for a later request only if its headers
    do not arrive whole in one read (the common case costs no timer).
    """

    def __init__(self, *args: Any, header_timeout: float = HEADER_TIMEOUT_S, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True

    def data_received(self, data: bytes) -> None:
        header_data = self._awaiting_headers  # this read continues a request's headers
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data) if header_data else 0
            if self._header_bytes > MAX_HEADER_BYTES:
                self.send_400_response("Request headers too large.")
            elif self._header_deadline is None:
                self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self.transport.close)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None


# -- gRPC ------------------------------------------------------------------------------------------
class ErrorInterceptor(aio.ServerInterceptor):
    """Every RPC answers a status from ``error_status``, also for a message that is not valid
    protobuf, and rejected requests are counted for the model they were for."""

    def __init__(self, models: dict[str, DiseaseClassifier], access_log: bool = False):
        self.models = models
        self.access_log = access_log

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if self.access_log:
            logger.info("grpc method: %s", details.method)
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._guard(handler.unary_unary, handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _guard(self, behavior: Callable, parse: Callable | None) -> Callable:
        async def guarded(raw: bytes, context: aio.ServicerContext) -> Any:
            try:
                request = parse(raw) if parse else raw
            except (DecodeError, ValueError, TypeError):
                await context.abort(StatusCode.INVALID_ARGUMENT, "malformed request message")
            try:
                return await behavior(request, context)
            except aio.AbortError:
                raise
            except Exception as e:
                _, code, message = error_status(e)
                model = self.models.get(getattr(request, "model_name", ""))
                if isinstance(e, RequestRejected) and model is not None:
                    model.reject(e)
            await context.abort(code, message)

        return guarded


class GRPCServer:
    """KServe's v2 gRPC servicer on ``address``, behind ``ErrorInterceptor``."""

    def __init__(
        self,
        address: str,
        dataplane: DataPlane,
        extension: ModelRepositoryExtension,
        interceptor: ErrorInterceptor,
        max_workers: int,
    ):
        self.address = address
        self.servicer = InferenceServicer(dataplane, extension)
        self.interceptor = interceptor
        self.max_workers = max_workers
        self.server: aio.Server | None = None

    async def start(self) -> None:
        self.server = aio.server(
            ThreadPoolExecutor(max_workers=self.max_workers),
            interceptors=[self.interceptor],
            options=[
                ("grpc.max_receive_message_length", MAX_BODY_BYTES),
                ("grpc.max_send_message_length", MAX_BODY_BYTES * 4),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            self.servicer, self.server
        )
        if self.server.add_insecure_port(self.address) == 0:
            raise OSError(f"gRPC could not listen on {self.address}")
        logger.info("Starting gRPC server on %s", self.address)
        await self.server.start()
        await self.server.wait_for_termination()

    async def stop(self, grace: float) -> None:
        if self.server is not None:
            await self.server.stop(grace=grace)


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
        enable_grpc: bool = True,
        **kwargs: Any,
    ):
        super().__init__(registered_models=ServedModels(), enable_grpc=False, **kwargs)
        if self.workers != 1:
            raise ValueError("this server runs one worker per process: scale with replicas")
        self.bind_address = bind_address
        self.access_log = access_log
        self.fast_path = fast_path
        self.header_timeout = header_timeout
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
        config.http = functools.partial(HeaderTimeoutProtocol, header_timeout=self.header_timeout)
        config.app = self.rest_app()
        if self.serve_grpc:
            host = "[::]" if self.bind_address in ("0.0.0.0", "::") else self.bind_address
            interceptor = ErrorInterceptor({m.name: m for m in self.models}, self.access_log)
            self.grpc_server = GRPCServer(
                f"{host}:{self.grpc_port}",
                self.dataplane,
                self.model_repository_extension,
                interceptor,
                self.max_threads,
            )
            self.servers.append(self.grpc_server.start())

    def stop(self, sig: int) -> None:
        super().stop(sig)
        if self.grpc_server is not None:
            self._grpc_stopping = asyncio.create_task(self.grpc_server.stop(self.grace_period))
