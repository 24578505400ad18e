"""KServe's ModelServer, bound to a chosen address, quiet by default, with a v2 JSON fast path.

KServe 0.21 binds REST to 0.0.0.0 and gRPC to [::] with no option; ``ModelServer`` here
builds the same REST and gRPC servers but binds ``bind_address`` (127.0.0.1 for local runs,
0.0.0.0 in the image). It also:

- answers ``POST /v2/models/<name>/infer`` with a plain JSON body straight from
  ``DiseaseClassifier.infer_json`` (an ASGI wrapper in front of KServe's FastAPI app); every
  other request, including binary-tensor and CloudEvent ones, goes to KServe's app unchanged;
- turns off per-request logging unless asked for (uvicorn access log, KServe's timing and
  latency lines, the gRPC method log);
- answers bad requests 400 / INVALID_ARGUMENT with the message, counts them by reason, and
  logs the reason only (KServe's own handlers log the message, which names symptoms).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from concurrent import futures
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from grpc import StatusCode, aio
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput
from kserve.model import BaseKServeModel
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.model import DiseaseClassifier, reject

logger = logging.getLogger("kserve")

LOOPBACK = "127.0.0.1"
# 1024 patients as 132-wide JSON vectors are ~0.6 MB; anything much larger is not a request.
MAX_BODY_BYTES = 8 * 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]


# -- REST ------------------------------------------------------------------------------------------
class FastInferApp:
    """ASGI wrapper: plain JSON v2 infer requests for our models skip FastAPI."""

    def __init__(self, app: ASGIApp, models: Sequence[DiseaseClassifier]) -> None:
        self.app = app
        self.routes = {f"/v2/models/{m.name}/infer": m for m in models}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            model = self.routes.get(scope["path"])
            if model is not None and model.ready and _plain_json(scope["headers"]):
                body = await _read_body(receive, MAX_BODY_BYTES)
                if body is None:  # client went away
                    return
                if body is TOO_LARGE:
                    status, payload = model.reject_too_large(MAX_BODY_BYTES)
                else:
                    status, payload = model.infer_json(body)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(payload))],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)


def _plain_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """False for the binary tensor extension and binary CloudEvents (KServe decodes those)."""
    for key, _ in headers:
        if key == b"inference-header-content-length" or key.startswith(b"ce-"):
            return False
    return True


TOO_LARGE = object()  # marker: the body passed the limit


async def _read_body(receive: Receive, limit: int) -> bytes | object | None:
    """The request body, or TOO_LARGE (the rest is drained, not kept), or None on disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else TOO_LARGE


async def _rejected_handler(request: Request, exc: InvalidInput) -> JSONResponse:
    if not hasattr(exc, "reason_code") and str(exc).startswith("Unrecognized request format"):
        exc.reason_code = "malformed_json"  # KServe's own JSON decoding failed
    reject(request.path_params.get("model_name", ""), exc)
    return JSONResponse(status_code=400, content={"error": str(exc)})


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a body that is not a v2 request -> 400, without echoing the body."""
    errors = exc.errors()
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors
    )
    json_error = any(e.get("type") == "json_invalid" for e in errors)
    error = InvalidInput(
        f"malformed JSON: {problems}" if json_error else f"malformed request: {problems}"
    )
    error.reason_code = "malformed_json"
    return await _rejected_handler(request, error)


class _RESTServer(RESTServer):
    def __init__(
        self,
        *args: Any,
        bind_address: str,
        access_log: bool,
        models: Sequence[Any],
        fast_path: bool,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.config.host = bind_address
        self.config.access_log = access_log
        self._models = [m for m in models if isinstance(m, DiseaseClassifier)]
        self._fast_path = fast_path

    def create_application(self):
        super().create_application()
        if self._fast_path:
            self.config.app = FastInferApp(model_server.app, self._models)

    def _add_exception_handlers(self, app: FastAPI) -> None:
        super()._add_exception_handlers(app)
        app.add_exception_handler(InvalidInput, _rejected_handler)
        routes = {f"/v2/models/{m.name}/infer": m for m in self._models}

        async def validation_handler(request: Request, exc: RequestValidationError) -> Response:
            model = routes.get(request.url.path)
            if model is not None:
                # The body failed FastAPI's request model: answer exactly as the fast path
                # does for the same body (same message, same rejection counter).
                body = exc.body if isinstance(exc.body, bytes | str) else orjson.dumps(exc.body)
                status, payload = model.infer_json(body.encode() if isinstance(body, str) else body)
                if status == 400:
                    return Response(payload, status_code=400, media_type="application/json")
            return await _validation_handler(request, exc)

        app.add_exception_handler(RequestValidationError, validation_handler)


# -- gRPC ------------------------------------------------------------------------------------------
class _RejectingInterceptor(ExceptionToStatusInterceptor):
    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str
    ) -> None:
        if isinstance(ex, InvalidInput):
            reject(getattr(request_or_iterator, "model_name", ""), ex)
            await context.abort(StatusCode.INVALID_ARGUMENT, ex.reason)
        await super().handle_exception(ex, request_or_iterator, context, method_name)


class _GRPCServer(GRPCServer):
    def __init__(self, *args, bind_address: str, access_log: bool, **kw):
        super().__init__(*args, **kw)
        self._bind_address = bind_address
        self._access_log = access_log

    async def start(self, max_workers: int) -> None:
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        interceptors = [_RejectingInterceptor()]
        if self._access_log:
            interceptors.insert(0, LoggingInterceptor())
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=interceptors,
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs.get("grpc_max_receive_message_length"),
                ),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        host = "[::]" if self._bind_address in ("0.0.0.0", "::") else self._bind_address
        listen = f"{host}:{self._port}"
        if self._server.add_insecure_port(listen) == 0:
            raise OSError(f"gRPC could not bind {listen}")
        logger.info("Starting gRPC server on %s with %s workers", listen, max_workers)
        await self._server.start()
        await self._server.wait_for_termination()


# -- the server --------------------------------------------------------------------------------
class ModelServer(model_server.ModelServer):
    """``kserve.ModelServer`` with ``bind_address``, ``access_log`` and ``fast_path``."""

    def __init__(
        self,
        *,
        bind_address: str = LOOPBACK,
        access_log: bool = False,
        fast_path: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bind_address = bind_address
        self.access_log = access_log
        self.fast_path = fast_path
        if not (self.enable_latency_logging or access_log):
            # KServe's timing middleware logs a line per request at INFO on this logger.
            logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        if not access_log:
            # uvicorn logs each request when this logger has handlers (KServe configures one).
            access = logging.getLogger("uvicorn.access")
            access.handlers.clear()
            access.propagate = False

    def start(self, models: list[BaseKServeModel]) -> None:
        if self.workers != 1:
            raise ValueError("this server runs one worker per process: scale with replicas")
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = _RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
            bind_address=self.bind_address,
            access_log=self.access_log,
            models=models,
            fast_path=self.fast_path,
        )
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = _GRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(model_server.args),
                grace_period=self.grace_period,
                bind_address=self.bind_address,
                access_log=self.access_log,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())
