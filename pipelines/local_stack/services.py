"""Start and stop real servers on loopback: an S3 server (SeaweedFS), MLflow, any subprocess.

Every service binds 127.0.0.1 only, writes its state under a folder it is given, and is
checked for readiness by actually answering, not by sleeping.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from symptom_dx.deadlines import poll_until
from symptom_dx.settings import LOOPBACK


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
    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            return bool(check())
        except (OSError, httpx.HTTPError):  # not listening yet
            return False

    if not poll_until(ready, timeout):
        raise ServiceError(f"{what} was not ready within {timeout:.0f} s")


@functools.cache
def _poll_client() -> httpx.Client:
    # One client for every readiness poll: each new one builds a TLS context (~25 ms of CPU),
    # a quarter of a core at ten polls a second. No keep-alive: servers come and go.
    return httpx.Client(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))


def poll(url: str, timeout: float = 1.0) -> httpx.Response:
    """GET ``url`` as a readiness check does (cheap to repeat many times a second)."""
    return _poll_client().get(url, timeout=timeout)


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: poll(url).status_code < 500


@dataclass
class Service:
    """A subprocess with its log file; stop() ends its whole process group."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    url: str = ""
    extra: dict = field(default_factory=dict)
    # files the process leaves behind (e.g. Unix sockets), removed once it has stopped
    leftovers: list[Path] = field(default_factory=list)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for path in self.leftovers:
            path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


LOG_ROTATE_BYTES = 5 * 2**20  # a log this big moves to <name>.log.1 at the next start


def spawn(name: str, argv: list[str], log_dir: Path, env: dict | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    if log_path.is_file() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        log_path.replace(log_path.with_suffix(".log.1"))  # logs stay bounded across runs
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


def port_owner(port: int) -> str:
    """Who listens on ``port`` on loopback, as "command (pid N)", or "" if we cannot tell."""
    from pipelines.local_stack.lifecycle import Proc, command_of

    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return str(Proc(int(proc.name), command_of(int(proc.name))))
    return ""


def require_free(port: int, what: str, setting: str = "") -> None:
    """One readable line if a port we are about to listen on is taken, naming who has it.

    Servers an earlier `make run` left are already stopped by then (``lifecycle.Run``): what
    holds the port is another program.
    """
    if not port_is_free(port):
        owner = port_owner(port)
        by = f" by {owner}" if owner else ""
        hint = f"; stop it or set {setting} to a free port" if setting else ""
        raise ServiceError(f"{what} port {port} on {LOOPBACK} is in use{by}{hint}")


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
    return _wait_ready(svc, ready, timeout)


def _wait_ready(svc: Service, ready: Callable[[Service], bool], timeout: float) -> Service:
    try:
        wait_until(lambda: ready(svc), timeout, f"{svc.name} at {svc.url}", svc.proc)
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


def _weed_mini_argv(
    config_dir: Path,
    data_dir: Path,
    port: int,
    http_ports: dict[str, int],
    grpc_ports: dict[str, int],
    metrics_port: int,
    buckets: tuple[str, ...],
) -> list[str]:
    """`weed mini` with every port given (``start_s3``)."""
    argv = [
        _bin("weed"),
        f"-config_dir={config_dir}",
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.port={port}",
        f"-s3.port.grpc={grpc_ports['s3']}",
        f"-master.port={http_ports['master']}",
        f"-master.port.grpc={grpc_ports['master']}",
        f"-volume.port={http_ports['volume']}",
        f"-volume.port.grpc={grpc_ports['volume']}",
        f"-filer.port={http_ports['filer']}",
        f"-filer.port.grpc={grpc_ports['filer']}",
        f"-admin.port={http_ports['admin']}",
        f"-admin.port.grpc={grpc_ports['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.metricsPort={metrics_port}",
        "-disableHttp",  # no master or filer HTTP API: S3 reaches them over (mTLS) gRPC
        "-master.telemetry=false",  # it reports to seaweedfs.com by default
        f"-s3.localSocket={data_dir / 's3.sock'}",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
    ]
    if buckets:
        argv.append(f"-bucket={','.join(buckets)}")
    return argv


S3_START_ATTEMPTS = 3


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
    given explicitly, and the S3 port is checked to be ours. Only the S3 port answers without
    a secret of this process: the master's and filer's HTTP APIs are off, the volume server
    wants a signed token and every gRPC port mutual TLS (``pipelines.local_stack.seaweedfs``).
    """
    from pipelines.local_stack.seaweedfs import (
        grpc_sockets,
        remove_stale_sockets,
        write_security_config,
    )

    require_free(port, "S3", "S3_PORT")
    remove_stale_sockets()
    data_dir.mkdir(parents=True, exist_ok=True)
    config_dir = write_security_config(data_dir.parent / f"{data_dir.name}-security")
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}

    def ready(svc: Service) -> bool:
        if not http_ok(svc.url)():
            return False
        if not buckets:
            return True
        from minio import Minio

        client = Minio(f"{LOOPBACK}:{port}", access_key, secret_key, secure=False)
        return all(client.bucket_exists(b) for b in buckets)

    attempt = 0
    while True:
        attempt += 1
        p = {k: free_port() for k in ("master", "volume", "filer", "admin")}
        grpc = {k: free_port() for k in ("master", "volume", "filer", "admin", "s3")}
        metrics_port = free_port()
        argv = _weed_mini_argv(config_dir, data_dir, port, p, grpc, metrics_port, buckets)
        svc = spawn("s3", argv, log_dir, env)
        svc.url = f"http://{LOOPBACK}:{port}"
        svc.leftovers = [*grpc_sockets(grpc), data_dir / "s3.sock", data_dir / "filer.sock"]
        svc.extra.update(http_ports=p, grpc_ports=grpc, config_dir=config_dir)
        try:
            return _wait_ready(svc, ready, timeout)
        except ServiceError as e:
            # Its own ports are picked free a moment before it binds them; one taken in
            # between (by another server starting) is worth new picks.
            internal = [*p.values(), *grpc.values(), metrics_port]
            taken = re.search(r"port (\d+) for .* is not available|:(\d+): bind: address", str(e))
            if (
                not taken
                or int(taken[1] or taken[2]) not in internal
                or attempt == S3_START_ATTEMPTS
            ):
                raise


# MLflow's basic-auth configuration: the cluster's (a ConfigMap made from this file), with the
# user database moved into the local state folder.
MLFLOW_AUTH_CONFIG = Path(__file__).resolve().parents[2] / "manifests" / "mlflow" / "basic_auth.ini"


@dataclass(frozen=True)
class MlflowAuth:
    """The admin user of a local MLflow with its basic-auth app, as the cluster runs it."""

    username: str
    password: str

    @classmethod
    def of_state(cls, state_dir: Path) -> MlflowAuth:
        """Made once and kept in ``state_dir/mlflow-credentials`` (never in the repository)."""
        path = state_dir / "mlflow-credentials"
        if not path.is_file():
            state_dir.mkdir(parents=True, exist_ok=True)
            # a user database from before these credentials would refuse them
            (state_dir / "mlflow" / "basic_auth.db").unlink(missing_ok=True)
            path.write_text(f"symptom-dx-admin\n{secrets.token_urlsafe(24)}\n")
            path.chmod(0o600)
        username, password = path.read_text().split()
        return cls(username, password)

    def client_env(self) -> dict[str, str]:
        """What MLflow's clients read."""
        return {
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }

    def password_file(self, state_dir: Path) -> Path:
        """The password alone in a file only its owner reads (for Prometheus' basic_auth)."""
        path = state_dir / "mlflow-password"
        path.write_text(self.password)
        path.chmod(0o600)
        return path


def mlflow_exports_metrics() -> bool:
    """Whether MLflow's Prometheus exporter (prometheus-flask-exporter) is installed."""
    return importlib.util.find_spec("prometheus_flask_exporter") is not None


def start_mlflow(
    state_dir: Path,
    port: int,
    artifacts_destination: str,
    log_dir: Path,
    env: dict | None = None,
    timeout: float = 60.0,
    auth: MlflowAuth | None = None,
) -> Service:
    """A real MLflow tracking server: sqlite backend, artifacts proxied to S3, on loopback,
    with Prometheus metrics on ``/metrics`` (``extra["metrics"]``) when MLflow's exporter,
    prometheus-flask-exporter, is installed. With ``auth``, its basic-auth app as on the
    cluster: every call but ``/health`` needs the user (``auth.client_env()``)."""
    require_free(port, "MLflow", "MLFLOW_PORT")
    state_dir.mkdir(parents=True, exist_ok=True)
    metrics = mlflow_exports_metrics()
    # prometheus_client's multiprocess files: a fresh folder, or old runs' samples add up
    metrics_dir = state_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
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
        *(["--expose-prometheus", str(metrics_dir)] if metrics else []),
    ]
    url = f"http://{LOOPBACK}:{port}"
    # No job runner: its consumer processes take ~1.9 GB for features we do not use.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    if auth is not None:
        config = state_dir / "basic_auth.ini"
        config.write_text(
            MLFLOW_AUTH_CONFIG.read_text().replace(
                "sqlite:////mlflow/basic_auth.db", f"sqlite:///{state_dir / 'basic_auth.db'}"
            )
        )
        argv += ["--app-name", "basic-auth"]
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_AUTH_ADMIN_USERNAME": auth.username,
            "MLFLOW_AUTH_ADMIN_PASSWORD": auth.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
        }
    svc = start("mlflow", argv, log_dir, url, lambda _: http_ok(f"{url}/health")(), timeout, env)
    svc.extra["metrics"] = metrics
    return svc


@contextlib.contextmanager
def running(*services: Service) -> Iterator[tuple[Service, ...]]:
    try:
        yield services
    finally:
        for svc in reversed(services):
            svc.stop()
