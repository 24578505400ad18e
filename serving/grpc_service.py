"""The v2 gRPC port: KServe's servicer (``InferenceServicer``) on our address, with
``ModelInfer`` for our served models through the fast path, behind ``ErrorInterceptor``, which
answers every RPC with a status from ``serving.errors`` (also for a message that is not valid
protobuf) and counts rejected requests for their model."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import StatusCode, aio
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from serving.errors import error_status
from serving.fast_path import FastPath
from serving.model import DiseaseClassifier
from serving.protocol import RequestRejected
from symptom_dx.contract import MAX_BODY_BYTES

logger = logging.getLogger("kserve")


class ErrorInterceptor(aio.ServerInterceptor):
    """Every RPC answers a status from ``error_status``, also for a message that is not valid
    protobuf, and rejected requests are counted for the model they were for."""

    def __init__(self, models: dict[str, DiseaseClassifier], access_log: bool = False):
        self.models = models
        self.access_log = access_log
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

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
        guarded = self._guarded.get(details.method)
        if guarded is None:  # the servicer's handlers never change: wrap each once
            guarded = grpc.unary_unary_rpc_method_handler(
                self._guard(handler.unary_unary, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
            self._guarded[details.method] = guarded
        return guarded

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


class InferenceService(InferenceServicer):
    """KServe's servicer, with ``ModelInfer`` for a served, ready model answered by ``fast``
    (every other RPC, and everything when ``fast`` is None, by KServe's)."""

    def __init__(
        self, dataplane: DataPlane, extension: ModelRepositoryExtension, fast: FastPath | None
    ):
        super().__init__(dataplane, extension)
        self.fast = fast

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: aio.ServicerContext
    ) -> pb.ModelInferResponse:
        if self.fast is not None and (model := self.fast.grpc_model_for(request)):
            return await self.fast.answer_grpc(model, request)
        return await super().ModelInfer(request, context)


class GRPCServer:
    """``servicer`` on ``address``, behind ``interceptor``."""

    def __init__(
        self,
        address: str,
        servicer: InferenceServicer,
        interceptor: ErrorInterceptor,
        max_workers: int,
    ):
        self.address = address
        self.servicer = servicer
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
