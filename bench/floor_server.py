"""The floors of ``make bench``: a bare Starlette endpoint on uvicorn (uvloop, httptools, as
KServe runs) that parses the same JSON body and returns a constant, and, with a second port, a
bare ``ModelInfer`` in gRPC's threaded server (four threads, as ours with KServe's default
``--max_threads``) that parses the same message and returns a constant (no KServe, no model:
what the server stack alone costs).

    python bench/floor_server.py PORT [GRPC_PORT]
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import orjson
import uvicorn
import uvloop
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = b'{"ok":true}'
GRPC_ANSWER = pb.ModelInferResponse(model_name="floor")
GRPC_THREADS = 4


async def infer(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(ANSWER, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(ANSWER, media_type="application/json")


app = Starlette(
    routes=[
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/ready", ready),
    ]
)


def model_infer(
    request: pb.ModelInferRequest, context: grpc.ServicerContext
) -> pb.ModelInferResponse:
    return GRPC_ANSWER


async def serve(port: int, grpc_port: int | None) -> None:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, access_log=False, log_level="warning", loop="none"
    )
    if grpc_port is not None:
        server = grpc.server(ThreadPoolExecutor(GRPC_THREADS))
        handler = grpc.unary_unary_rpc_method_handler(
            model_infer,
            request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=pb.ModelInferResponse.SerializeToString,
        )
        service = {"ModelInfer": handler}
        generic = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", service)
        server.add_generic_rpc_handlers((generic,))
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        server.start()  # its threads serve beside the event loop until the process ends
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    grpc_port = int(sys.argv[2]) if len(sys.argv) > 2 else None
    uvloop.run(serve(int(sys.argv[1]), grpc_port))
