"""Start and stop real servers on loopback: an S3 server (SeaweedFS), MLflow, any subprocess.

Every service binds 127.0.0.1 only, writes its state under a folder it is given, and is
checked for readiness by actually answering, not by sleeping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A local service did not start; the message says which and why."""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True if a server could listen on the port (connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    raise ServiceError(f"{what} was not ready within {timeout:.0f} s")


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=1.0).status_code < 500


@dataclass
class Service:
    """A subprocess with its log file; stop() ends its whole process group."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    url: str = ""
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, argv: list[str], log_dir: Path, env: dict | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group, so stop() takes its children too
    )
    log.close()
    return Service(name, proc, log_path)


def require_free(port: int, what: str, setting: str = "") -> None:
    """One readable line if a port we are about to listen on is taken."""
    if not port_is_free(port):
        hint = f"; set {setting} to a free port" if setting else ""
        raise ServiceError(f"{what} port {port} on {LOOPBACK} is in use{hint}")


def start(
    name: str,
    argv: list[str],
    log_dir: Path,
    url: str,
    ready: Callable[[Service], bool],
    timeout: float,
    env: dict | None = None,
) -> Service:
    """Spawn ``argv`` and wait until ``ready(service)``; on failure stop it and raise with the
    tail of its log, so the reason is on screen."""
    svc = spawn(name, argv, log_dir, env)
    svc.url = url
    try:
        wait_until(lambda: ready(svc), timeout, f"{name} at {url}", svc.proc)
    except ServiceError as e:
        svc.stop()
        raise ServiceError(f"{e}\n{svc.log_tail()}") from None
    return svc


def _bin(name: str) -> str:
    """A console script of this virtual environment (or from PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ServiceError(f"'{name}' is not installed; run `make venv`")
    return found


def start_s3(
    data_dir: Path,
    port: int,
    access_key: str,
    secret_key: str,
    log_dir: Path,
    buckets: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> Service:
    """A real S3 server (SeaweedFS `weed mini`) on 127.0.0.1:port with signature checks.

    SeaweedFS opens a dozen ports and silently moves one that is busy: every one of them is
    given explicitly, and the S3 port is checked to be ours.
    """
    require_free(port, "S3", "S3_PORT")
    data_dir.mkdir(parents=True, exist_ok=True)
    p = {k: free_port() for k in ("master", "volume", "filer", "admin")}
    argv = [
        _bin("weed"),
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.port={port}",
        f"-s3.port.grpc={free_port()}",
        f"-master.port={p['master']}",
        f"-master.port.grpc={free_port()}",
        f"-volume.port={p['volume']}",
        f"-volume.port.grpc={free_port()}",
        f"-filer.port={p['filer']}",
        f"-filer.port.grpc={free_port()}",
        f"-admin.port={p['admin']}",
        f"-admin.port.grpc={free_port()}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.metricsPort={free_port()}",
    ]
    if buckets:
        argv.append(f"-bucket={','.join(buckets)}")
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}

    def ready(svc: Service) -> bool:
        if not http_ok(svc.url)():
            return False
        if not buckets:
            return True
        from minio import Minio

        client = Minio(f"{LOOPBACK}:{port}", access_key, secret_key, secure=False)
        return all(client.bucket_exists(b) for b in buckets)

    return start("s3", argv, log_dir, f"http://{LOOPBACK}:{port}", ready, timeout, env)


def start_mlflow(
    state_dir: Path,
    port: int,
    artifacts_destination: str,
    log_dir: Path,
    env: dict | None = None,
    timeout: float = 60.0,
) -> Service:
    """A real MLflow tracking server: sqlite backend, artifacts proxied to S3, on loopback."""
    require_free(port, "MLflow", "MLFLOW_PORT")
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{state_dir / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://{LOOPBACK}:{port}"
    # No job runner: its consumer processes take ~1.9 GB for features we do not use.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    return start("mlflow", argv, log_dir, url, lambda svc: http_ok(f"{url}/health")(), timeout, env)


@contextlib.contextmanager
def running(*services: Service) -> Iterator[tuple[Service, ...]]:
    try:
        yield services
    finally:
        for svc in reversed(services):
            svc.stop()
