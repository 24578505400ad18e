"""``python -m serving --model_dir DIR_OR_URI [--http_port 8080 --grpc_port 8081 ...]``.

KServe's flags (``kserve.model_server.parser``: ports, workers, gRPC, logging, ...) plus ours,
as KServe's sklearnserver extends the same parser. Defaults differ from KServe's where a local
run needs it: the model is ``disease-classifier``, the server binds 127.0.0.1 (the image passes
``--bind_address=0.0.0.0``), and no line is logged per request (``--enable_latency_logging
true`` / ``--access_log true`` to turn on).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings

from serving.lean import trim_imports

trim_imports()

import uvloop  # noqa: E402
from kserve import model_server  # noqa: E402
from kserve.utils.utils import strtobool  # noqa: E402

from symptom_dx import contract  # noqa: E402
from symptom_dx.contract import MODEL_NAME  # noqa: E402
from symptom_dx.process_exit import skip_final_collection  # noqa: E402
from symptom_dx.settings import LOOPBACK  # noqa: E402

logger = logging.getLogger("kserve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        parents=[model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="KServe v2 predictor for the symptom-based disease classifier.",
    )
    parser.add_argument(
        "--model_dir",
        default=os.environ.get("MODEL_DIR", ""),
        help="Folder with model.joblib + metadata.json, or a URI kserve_storage downloads "
        "(s3://bucket/prefix needs AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). Env: MODEL_DIR.",
    )
    parser.add_argument(
        "--model_sha256",
        default=os.environ.get("MODEL_SHA256", ""),
        help="sha256 (hex) that model.joblib must have, checked before it is unpickled; the "
        "one recorded at registration. Empty: no check. Env: MODEL_SHA256.",
    )
    parser.add_argument(
        "--model_cache_dir",
        default=None,
        help="Where remote models are downloaded (a fresh temporary folder by default).",
    )
    parser.add_argument(
        "--bind_address",
        default=os.environ.get("SERVING_BIND_ADDRESS", LOOPBACK),
        help="Address REST and gRPC listen on; 0.0.0.0 in a container. Env: SERVING_BIND_ADDRESS.",
    )
    parser.add_argument(
        "--access_log",
        default=False,
        type=strtobool,
        help="Log a line per request (uvicorn access log, gRPC method log).",
    )
    parser.add_argument(
        "--fast_path",
        default=True,
        type=strtobool,
        help="Answer plain JSON v2 infer requests without FastAPI's request models "
        "(serving.fast_path); false: every request through KServe's own data plane.",
    )
    parser.add_argument(
        "--allow_repository_changes",
        default=False,
        type=strtobool,
        help="Let the model repository extension (/v2/repository/models/<name>/load|unload, "
        "gRPC RepositoryModelLoad|Unload) unload and load models. Off: they answer 403.",
    )
    parser.add_argument(
        "--header_timeout",
        default=contract.HEADER_TIMEOUT_S,
        type=float,
        help="Seconds a client may take to send a request's headers before the connection "
        "is closed (uvicorn itself only times idle keep-alive connections).",
    )
    parser.add_argument(
        "--body_timeout",
        default=contract.BODY_TIMEOUT_S,
        type=float,
        help="Seconds a request's body may take to arrive after its headers; later: 408 and "
        "the connection closed.",
    )
    parser.add_argument(
        "--write_timeout",
        default=contract.WRITE_TIMEOUT_S,
        type=float,
        help="Seconds an answer may wait for a client that does not read it before the "
        "connection is dropped.",
    )
    parser.add_argument(
        "--max_buffered_output",
        default=contract.MAX_BUFFERED_OUTPUT_BYTES,
        type=int,
        help="Bytes of unread answers all connections together may leave in the server; a "
        "connection that would pass it is dropped.",
    )
    parser.set_defaults(model_name=MODEL_NAME, enable_latency_logging=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    skip_final_collection()
    args = build_parser().parse_args(argv)
    # The event loop shares the GIL with the worker thread that ranks large requests: hand it
    # over every 1 ms, not 5, so health checks wait less behind that pure-Python work.
    sys.setswitchinterval(0.001)
    # KServe's v1 route answers with FastAPI's deprecated ORJSONResponse: one warning, nothing
    # an operator can act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    # Imported here: it pulls in the model stack, and --help should not wait for it.
    from serving.model import DiseaseClassifier
    from serving.parser import SymptomParser
    from serving.server import ModelServer
    from symptom_dx.errors import SymptomDxError

    try:
        server = ModelServer(
            bind_address=args.bind_address,
            access_log=args.access_log,
            fast_path=args.fast_path,
            allow_repository_changes=args.allow_repository_changes,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            write_timeout=args.write_timeout,
            max_buffered_output=args.max_buffered_output,
            http_port=args.http_port,
            workers=args.workers,
            grpc_port=args.grpc_port,
            max_threads=args.max_threads,
            max_asyncio_workers=args.max_asyncio_workers,
            enable_grpc=args.enable_grpc,
            enable_docs_url=args.enable_docs_url,
            enable_latency_logging=args.enable_latency_logging,
            access_log_format=args.access_log_format,
            event_loop=args.event_loop,
            timeout_keep_alive=args.timeout_keep_alive,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
    except ValueError as e:  # flags KServe accepts and this server does not (--workers)
        logger.error("cannot serve %s: %s", args.model_name, e)
        return 2
    model = DiseaseClassifier(
        args.model_name, args.model_dir, cache_dir=args.model_cache_dir, sha256=args.model_sha256
    )
    text_parser = SymptomParser()
    try:
        model.load()
        text_parser.load()
    except SymptomDxError as e:
        logger.error("cannot serve %s: %s", args.model_name, e)
        return 2
    logger.info("serving %s from %s", args.model_name, args.model_dir)
    # KServe runs its servers in its own asyncio.run, so uvicorn never applies --event_loop;
    # applied here: uvloop, as the flag's default ("auto") promises when it is installed.
    if args.event_loop != "asyncio":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        # KServe asks for the current loop (asyncio.get_event_loop) before its asyncio.run,
        # which the default policy makes implicitly and uvloop's does not.
        asyncio.set_event_loop(asyncio.new_event_loop())
    server.start([model, text_parser])
    return 0


if __name__ == "__main__":
    sys.exit(main())
