"""The v2 gRPC port: KServe's servicer (``InferenceServicer``) on our address, served by gRPC's
threaded server (``grpc.server``).

Each call runs in one of the server's threads. ``ModelInfer`` for a served, ready model is
answered right there by the fast path, with no hop to the event loop; every other RPC, and
``ModelInfer`` without the fast path, runs KServe's async servicer on the event loop that
started the server while the thread waits for it. Why threads and not ``grpc.aio``: the fast
path needs no event loop, and on one core our one-patient ``ModelInfer`` answered ~1.4-1.5x
as many calls a second in the threaded server as in grpc.aio (side by side, serving/README.md).

Every RPC answers a status from ``serving.errors.error_status`` (also for a message that is not
valid protobuf: INVALID_ARGUMENT), and rejected requests are counted for their model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import StatusCode
from kserve.errors import ServerNotLive
from kserve.protocol.grpc import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.servicer import InferenceServicer

from serving.errors import error_status
from serving.fast_path import FastPath
from serving.model import DiseaseClassifier
from serving.protocol import RequestRejected
from symptom_dx.contract import MAX_BODY_BYTES

logger = logging.getLogger("kserve")

_DESCRIPTOR = grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
SERVICE = _DESCRIPTOR.full_name  # inference.GRPCInferenceService
MODEL_INFER = f"/{SERVICE}/ModelInfer"


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str):
        self.method = method
        self.invocation_metadata = ()


class _Recorder:
    """Takes the method handlers gRPC's generated ``add_..._to_server`` registers (the public
    way to read a servicer's methods with their message types), instead of a server."""

    def __init__(self) -> None:
        self.registered: dict[str, grpc.RpcMethodHandler] = {}
        self.generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self.registered.update({f"/{service}/{name}": h for name, h in handlers.items()})

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Each method of the v2 service: as registered by name (generated code of grpcio >=
        1.62), else as a generic handler answers for it (older generated code)."""
        out = {}
        for method in _DESCRIPTOR.methods:
            name = f"/{SERVICE}/{method.name}"
            handler = self.registered.get(name)
            for generic in self.generic if handler is None else ():
                handler = generic.service(_CallDetails(name))
                if handler is not None:
                    break
            if handler is not None:
                out[name] = handler
        return out


class _LoopContext:
    """The threaded server's context as KServe's async servicer reads it: its ``to_headers``
    adds ``trailing_metadata()`` (a tuple in grpc.aio, None in the threaded server before any
    is set) to the invocation metadata."""

    def __init__(self, context: grpc.ServicerContext):
        self._context = context

    def invocation_metadata(self) -> tuple:
        return tuple(self._context.invocation_metadata() or ())

    def trailing_metadata(self) -> tuple:
        return tuple(self._context.trailing_metadata() or ())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class ThreadedService(grpc.GenericRpcHandler):
    """KServe's async servicer as the threaded server calls it: each method's request parsed,
    run (``ModelInfer`` through ``fast`` when it answers the model), errors mapped to a status.

    ``loop``: the running event loop KServe's methods run on.
    """

    def __init__(
        self,
        servicer: InferenceServicer,
        fast: FastPath | None,
        models: dict[str, DiseaseClassifier],
        loop: asyncio.AbstractEventLoop,
        access_log: bool = False,
    ):
        self.fast = fast
        self.models = models
        self.loop = loop
        self.access_log = access_log
        self._waiting: set[concurrent.futures.Future] = set()
        self._stopped = False
        self._lock = threading.Lock()
        recorder = _Recorder()
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, recorder)
        self.handlers = {
            method: grpc.unary_unary_rpc_method_handler(
                self._guard(method, h.unary_unary, h.request_deserializer),
                response_serializer=h.response_serializer,
            )
            for method, h in recorder.handlers().items()
        }

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if self.access_log:
            logger.info("grpc method: %s", details.method)
        return self.handlers.get(details.method)

    def _guard(self, method: str, behavior: Callable, parse: Callable) -> Callable:
        """The threaded handler of ``method``: parse, answer, and map any error to a status."""
        fast = self.fast if method == MODEL_INFER else None

        def guarded(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request = parse(raw)
            except (DecodeError, ValueError, TypeError):
                context.abort(StatusCode.INVALID_ARGUMENT, "malformed request message")
            try:
                model = fast.grpc_model_for(request) if fast is not None else None
                if model is not None:
                    return fast.answer_grpc(model, request)
                return self._on_loop(behavior(request, _LoopContext(context)))
            except Exception as e:
                _, code, message = error_status(e)
                model = self.models.get(getattr(request, "model_name", ""))
                if isinstance(e, RequestRejected) and model is not None:
                    model.reject(e)
            context.abort(code, message)

        return guarded

    def _on_loop(self, coroutine: Coroutine) -> Any:
        """``coroutine``'s result, run on the event loop while this thread waits (``cancel_all``
        ends the wait when the server stops, and refuses any wait after it)."""
        with self._lock:
            if self._stopped:  # the loop may never run it: answer now
                coroutine.close()
                raise ServerNotLive("it stopped before the answer")
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
            self._waiting.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:  # UNAVAILABLE, as for any stopping server
            raise ServerNotLive("it stopped before the answer") from None
        finally:
            with self._lock:
                self._waiting.discard(future)

    def cancel_all(self) -> None:
        """End every wait for the event loop (the server has stopped: nobody reads the answers,
        and a thread waiting on a stopped loop would keep the process from exiting)."""
        with self._lock:
            self._stopped = True
            for future in self._waiting:
                future.cancel()


class GRPCServer:
    """``service`` on ``address``, in gRPC's threaded server with ``max_workers`` threads."""

    def __init__(
        self,
        address: str,
        servicer: InferenceServicer,
        fast: FastPath | None,
        models: dict[str, DiseaseClassifier],
        max_workers: int,
        access_log: bool = False,
    ):
        self.address = address
        self.servicer = servicer
        self.fast = fast
        self.models = models
        self.max_workers = max_workers
        self.access_log = access_log
        self.server: grpc.Server | None = None
        self.service: ThreadedService | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Serve until ``stop``."""
        self.service = ThreadedService(
            self.servicer, self.fast, self.models, asyncio.get_running_loop(), self.access_log
        )
        self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="grpc")
        self.server = grpc.server(
            self._executor,
            handlers=[self.service],
            options=[
                ("grpc.max_receive_message_length", MAX_BODY_BYTES),
                ("grpc.max_send_message_length", MAX_BODY_BYTES * 4),
            ],
        )
        if self.server.add_insecure_port(self.address) == 0:
            raise OSError(f"gRPC could not listen on {self.address}")
        logger.info("Starting gRPC server on %s", self.address)
        self.server.start()
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        """Stop taking calls, let those under way finish for up to ``grace`` seconds."""
        if self.server is not None:
            stopped = self.server.stop(grace)
            await asyncio.to_thread(stopped.wait)
            self.service.cancel_all()
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._stopped.set()
