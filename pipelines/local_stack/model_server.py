"""Start the model server as a subprocess on loopback and wait until it is ready.

For code that needs a running predictor (``make run``, UI tests, the benchmark)::

    svc = start_model_server(model_dir, free_port(), free_port(), log_dir)
    ... svc.url (REST base URL), svc.extra["grpc"] (host:port) ...
    svc.stop()
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.local_stack.services import LOOPBACK, Service, poll, require_free, start
from symptom_dx.contract import MODEL_NAME


def start_model_server(
    model_dir: str | Path,
    http_port: int,
    grpc_port: int,
    log_dir: str | Path,
    env: dict | None = None,
    *,
    model_name: str = MODEL_NAME,
    extra_args: Sequence[str] = (),
    cpus: str | None = None,
    timeout: float = 30.0,
) -> Service:
    """``python -m serving`` on 127.0.0.1; returns once the model answers ready.

    ``env`` adds variables (e.g. the AWS_* ones for an ``s3://`` model_dir); ``cpus`` pins
    the server with ``taskset -c``; ``extra_args`` are more ``python -m serving`` flags.
    """
    require_free(http_port, "model server REST", "MODEL_HTTP_PORT")
    require_free(grpc_port, "model server gRPC", "MODEL_GRPC_PORT")
    argv = [
        sys.executable,
        "-m",
        "serving",
        "--model_dir",
        str(model_dir),
        "--model_name",
        model_name,
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
        "--bind_address",
        LOOPBACK,
        *extra_args,
    ]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    url = f"http://{LOOPBACK}:{http_port}"
    ready = f"{url}/v2/models/{model_name}/ready"
    svc = start(
        "model-server",
        argv,
        Path(log_dir),
        url,
        lambda _: poll(ready).status_code == 200,
        timeout,
        env,
    )
    svc.extra.update(grpc=f"{LOOPBACK}:{grpc_port}", model_name=model_name)
    return svc
