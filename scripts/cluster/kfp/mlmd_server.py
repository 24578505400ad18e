#!/usr/bin/env python3
"""An ML Metadata (MLMD) gRPC server made of PyPI's ``ml-metadata`` wheel.

Stands in for ``gcr.io/tfx-oss-public/ml_metadata_store_server`` (a C++ binary that no package
registry ships) in Kubeflow Pipelines' ``metadata-grpc-deployment``: it serves the service
``ml_metadata.MetadataStoreService`` and hands each call's serialized request, unparsed, to the
C++ store compiled into the wheel (``ml_metadata.metadata_store.pywrap``), whose functions take
the request's bytes and return the response's bytes with an absl status code (the same numbers
as gRPC's). The three methods the wheel's store lacks (GetParentContextsByContexts,
GetChildrenContextsByContexts, GetLineageGraph) answer UNIMPLEMENTED; Kubeflow Pipelines calls
none of them.

Flags are the upstream server's (gflags style: ``--name=value``, ``--name value``, ``--name``
and ``--noname`` for booleans), so the upstream Deployment runs unchanged but for its image:

  --grpc_port=8080 --grpc_channel_arguments=k=v,k=v
  --metadata_store_server_config_file=FILE   (text MetadataStoreServerConfig; overrides --mysql*)
  --metadata_store_connection_retries=5
  --mysql_config_host= --mysql_config_port= --mysql_config_database=
  --mysql_config_user= --mysql_config_password=
  --enable_database_upgrade=false --downgrade_db_schema_version=-1

and three of its own: ``--grpc_host`` (listen address, of both listeners; upstream's is always
0.0.0.0), ``--sqlite_filename`` (a SQLite file instead of MySQL) and ``--grpc_web_port`` (below).
With no database flags the store is in memory and not persistent, as upstream.

``--grpc_web_port=N`` (default 0: off) also serves the same methods, through the same handlers,
over grpc-web on plain HTTP/1.1 (waitress), in place of the Envoy proxy (grpc_web filter) that
upstream puts in front of this server for the KFP dashboard: POST
/ml_metadata.MetadataStoreService/<Method>, Content-Type application/grpc-web[+proto] (binary) or
application/grpc-web-text[+proto] (base64); the answer is HTTP 200 with a message frame (on
success) and a trailer frame (``grpc-status``, ``grpc-message``), codes as on the gRPC port. No
CORS (the dashboard's server proxies the calls), no compressed messages; plaintext even when the
gRPC port has TLS.

As upstream, the schema is created (or upgraded with --enable_database_upgrade) once at start,
and each MySQL call then opens its own connection, so no idle connection can go stale. The
in-memory and SQLite stores are one shared store instead. One log line at start, one at stop,
one per failed call (method and code: the store's messages quote the request, so they go to the
caller only); never request or response payloads.
SIGTERM and SIGINT stop the server within a few seconds.
"""

from __future__ import annotations

import base64
import logging
import signal
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NamedTuple, Protocol

import grpc
import waitress
from google.protobuf import text_format
from ml_metadata.metadata_store.pywrap.metadata_store_extension import (
    metadata_store as _ext,
)
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2
from waitress import wasyncore

SERVICE = "ml_metadata.MetadataStoreService"
LOG = logging.getLogger("mlmd_server")
# absl status codes are gRPC's codes by number.
_CODES: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}
# The store's functions: (store, request bytes) -> (response bytes, message bytes, code).
StoreCall = Callable[[Any, bytes], tuple[bytes, bytes, int]]


class FlagError(ValueError):
    """A command line that the upstream server would also refuse."""


@dataclass
class Flags:
    grpc_port: int = 8080
    grpc_channel_arguments: str = ""
    metadata_store_server_config_file: str = ""
    metadata_store_connection_retries: int = 5
    mysql_config_host: str = ""
    mysql_config_port: int = 0
    mysql_config_database: str = ""
    mysql_config_user: str = ""
    mysql_config_password: str = field(default="", repr=False)
    enable_database_upgrade: bool = False
    downgrade_db_schema_version: int = -1
    # Not upstream's:
    grpc_host: str = "0.0.0.0"
    sqlite_filename: str = ""
    grpc_web_port: int = 0


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def parse_flags(argv: Sequence[str]) -> Flags:
    """Parses gflags-style flags into Flags; raises FlagError as gflags would exit."""
    flags = Flags()
    kinds: dict[str, type] = {n: type(getattr(flags, n)) for n in flags.__dataclass_fields__}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            if args:
                raise FlagError(f"unexpected arguments: {' '.join(args)}")
            break
        if not arg.startswith("-") or arg in ("-", "--"):
            raise FlagError(f"unexpected argument {arg!r}")
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in ("help", "h", "helpfull"):
            print(__doc__)
            raise SystemExit(0)
        if name not in kinds and name.startswith("no") and kinds.get(name[2:]) is bool:
            if has_value:
                raise FlagError(f"boolean flag --{name} takes no value")
            setattr(flags, name[2:], False)
            continue
        kind = kinds.get(name)
        if kind is None:
            raise FlagError(f"unknown command line flag '{name}'")
        if kind is bool:
            if not has_value:
                setattr(flags, name, True)
            elif value.lower() in _TRUE | _FALSE:
                setattr(flags, name, value.lower() in _TRUE)
            else:
                raise FlagError(f"illegal value '{value}' specified for bool flag '{name}'")
            continue
        if not has_value:
            if not args:
                raise FlagError(f"flag '{arg}' is missing its argument")
            value = args.pop(0)
        if kind is int:
            try:
                setattr(flags, name, int(value))
            except ValueError:
                raise FlagError(
                    f"illegal value '{value}' specified for int flag '{name}'"
                ) from None
        else:
            setattr(flags, name, value)
    return flags


@dataclass
class StoreConfig:
    connection: metadata_store_pb2.ConnectionConfig
    migration: metadata_store_pb2.MigrationOptions
    ssl: metadata_store_pb2.MetadataStoreServerConfig.SSLConfig | None
    description: str


def store_config(flags: Flags) -> StoreConfig:
    """The connection, migration and TLS settings the flags ask for (upstream's precedence)."""
    server = metadata_store_pb2.MetadataStoreServerConfig()
    config_file = flags.metadata_store_server_config_file
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as f:
                text_format.Parse(f.read(), server)
        except (OSError, text_format.ParseError) as e:
            raise FlagError(f"--metadata_store_server_config_file={config_file}: {e}") from None
        source = f"config file {config_file}"
    elif flags.mysql_config_host or flags.mysql_config_database or flags.mysql_config_port:
        if not (
            flags.mysql_config_host and flags.mysql_config_database and flags.mysql_config_port > 0
        ):
            raise FlagError(
                "To use mysql store, all of --mysql_config_host, --mysql_config_port, "
                "--mysql_config_database needs to be provided"
            )
        mysql = server.connection_config.mysql
        mysql.host = flags.mysql_config_host
        mysql.port = flags.mysql_config_port
        mysql.database = flags.mysql_config_database
        mysql.user = flags.mysql_config_user
        mysql.password = flags.mysql_config_password
        source = "flags"
    elif flags.sqlite_filename:
        sqlite = server.connection_config.sqlite
        sqlite.filename_uri = flags.sqlite_filename
        sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        source = "flags"
    else:
        server.connection_config.fake_database.SetInParent()
        source = "no database flags"
    if flags.enable_database_upgrade and flags.downgrade_db_schema_version >= 0:
        raise FlagError(
            "Both --enable_database_upgrade=true and downgrade_db_schema_version >= 0 cannot "
            "be set together"
        )
    if flags.enable_database_upgrade:
        server.migration_options.enable_upgrade_migration = True
    if flags.downgrade_db_schema_version >= 0:
        server.migration_options.downgrade_to_schema_version = flags.downgrade_db_schema_version
    conn = server.connection_config
    kind = conn.WhichOneof("config")
    if kind == "mysql":
        user = conn.mysql.user or "(default user)"
        where = f"mysql {user}@{conn.mysql.host}:{conn.mysql.port}/{conn.mysql.database}"
    elif kind == "sqlite":
        where = f"sqlite {conn.sqlite.filename_uri}"
    elif kind == "postgresql":
        pg = conn.postgresql
        where = f"postgresql {pg.host or pg.hostaddr}:{pg.port}/{pg.dbname}"
    else:
        where = "in-memory fake database (not persistent)"
    return StoreConfig(
        connection=conn,
        migration=server.migration_options,
        ssl=server.ssl_config if server.HasField("ssl_config") else None,
        description=f"{where}, from {source}",
    )


def create_store(
    conn: metadata_store_pb2.ConnectionConfig, migration: metadata_store_pb2.MigrationOptions
) -> Any:
    """A store of the extension; raises RuntimeError with the store's message."""
    return _ext.CreateMetadataStore(conn.SerializeToString(), migration.SerializeToString())


class Stores:
    """Gives each call a store: a new connection per call for database servers (as upstream),
    one shared store, one call at a time, for the in-memory and SQLite stores."""

    def __init__(self, cfg: StoreConfig, first: Any) -> None:
        self._conn = cfg.connection
        self._no_migration = metadata_store_pb2.MigrationOptions()
        self._shared = (
            first if self._conn.WhichOneof("config") in ("fake_database", "sqlite") else None
        )
        self._lock = threading.Lock()

    def call(self, fn: StoreCall, request: bytes) -> tuple[bytes, str, int]:
        if self._shared is not None:
            with self._lock:
                response, message, code = fn(self._shared, request)
        else:
            try:
                store = create_store(self._conn, self._no_migration)
            except RuntimeError as e:
                message = f"cannot connect to the metadata database: {e}"
                LOG.warning("%s", message)
                return b"", message, 14  # UNAVAILABLE
            try:
                response, message, code = fn(store, request)
            finally:
                del store  # closes the connection now
        return response, message.decode("utf-8", "replace"), code


def method_names() -> list[str]:
    svc = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
    return [m.name for m in svc.methods]


def make_handler(stores: Stores) -> tuple[grpc.GenericRpcHandler, list[str]]:
    """A handler for every service method the extension has; bytes in, bytes out."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    missing: list[str] = []
    for name in method_names():
        fn = getattr(_ext, name, None)
        if fn is None:
            missing.append(name)
            continue
        handlers[name] = grpc.unary_unary_rpc_method_handler(_forward(stores, name, fn))
    return grpc.method_handlers_generic_handler(SERVICE, handlers), missing


class Context(Protocol):
    """What the handlers use of grpc.ServicerContext (GrpcWeb passes its own)."""

    def set_code(self, code: grpc.StatusCode) -> None: ...

    def set_details(self, details: str) -> None: ...


def _forward(stores: Stores, name: str, fn: StoreCall) -> Callable[[bytes, Context], bytes]:
    def handle(request: bytes, context: Context) -> bytes:
        response, message, code = stores.call(fn, request)
        if code == 0:
            return response
        status = _CODES.get(code, grpc.StatusCode.UNKNOWN)
        # The store's messages quote the request (names, properties, SQL with values): they go
        # to the caller only.
        LOG.warning("%s failed: %s", name, status.name)
        context.set_code(status)
        context.set_details(message)
        return b""

    return handle


# --- grpc-web: 5-byte frames (flags, big-endian length), 0x80 = the trailer frame ----------

WEB_BINARY = "application/grpc-web+proto"
WEB_TEXT = "application/grpc-web-text+proto"
_FRAME = struct.Struct(">BI")
_TRAILER_FLAG, _COMPRESSED_FLAG = 0x80, 0x01


class _CallDetails(NamedTuple):  # grpc.HandlerCallDetails' fields
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class _WebContext:
    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK
        self.details = ""

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


def _frame(flags: int, data: bytes) -> bytes:
    return _FRAME.pack(flags, len(data)) + data


def _grpc_message(text: str) -> str:
    """gRPC's percent-encoding of grpc-message: printable ASCII but '%' as is."""
    return "".join(
        chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in text.encode()
    )


class GrpcWeb:
    """A WSGI app: each POST is one unary call of the gRPC handler, in grpc-web framing."""

    def __init__(self, handler: grpc.GenericRpcHandler, max_message: int) -> None:
        self._handler = handler
        self._max = max_message

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        text = ctype in ("application/grpc-web-text", WEB_TEXT)
        if environ["REQUEST_METHOD"] != "POST":
            status, headers = "405 Method Not Allowed", [("Allow", "POST")]
        elif not text and ctype not in ("application/grpc-web", WEB_BINARY):
            status, headers = "415 Unsupported Media Type", []
        else:
            length = environ.get("CONTENT_LENGTH")
            body = environ["wsgi.input"].read(int(length) if length else -1)
            code, details, response = self.call(environ.get("PATH_INFO", ""), body, text)
            trailer = f"grpc-status: {code.value[0]}\r\n"
            if details:
                trailer += f"grpc-message: {_grpc_message(details)}\r\n"
            out = (_frame(0, response) if code == grpc.StatusCode.OK else b"") + _frame(
                _TRAILER_FLAG, trailer.encode("ascii")
            )
            if text:
                out = base64.b64encode(out)
            start_response(
                "200 OK",
                [
                    ("Content-Type", WEB_TEXT if text else WEB_BINARY),
                    ("Content-Length", str(len(out))),
                ],
            )
            return [out]
        start_response(status, [*headers, ("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []

    def call(self, path: str, body: bytes, text: bool) -> tuple[grpc.StatusCode, str, bytes]:
        """(code, details, response bytes) of one call; body is the request's frames."""
        if text:
            try:
                body = base64.b64decode(b"".join(body.split()), validate=True)
            except ValueError:
                return grpc.StatusCode.INTERNAL, "grpc-web-text body is not base64", b""
        if len(body) < _FRAME.size:
            return grpc.StatusCode.INTERNAL, "grpc-web request without a message frame", b""
        flags, size = _FRAME.unpack_from(body)
        if size > self._max >= 0:
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({size} vs. {self._max})",
                b"",
            )
        if flags & _COMPRESSED_FLAG:
            return grpc.StatusCode.UNIMPLEMENTED, "compressed messages are not supported", b""
        if flags or len(body) != _FRAME.size + size:
            return grpc.StatusCode.INTERNAL, "a unary call takes exactly one message frame", b""
        method = self._handler.service(_CallDetails(path, ()))
        if method is None or method.unary_unary is None:
            return grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {path}", b""
        context = _WebContext()
        try:
            response = method.unary_unary(body[_FRAME.size :], context)
        except Exception as e:  # as grpc's server: UNKNOWN, logged without the request
            LOG.error("%s raised %s", path.rsplit("/", 1)[-1], type(e).__name__)
            return grpc.StatusCode.UNKNOWN, "Exception calling application", b""
        return context.code, context.details, response


def web_server(app: GrpcWeb, host: str, port: int, max_body: int) -> tuple[Any, dict[int, Any]]:
    """A waitress server bound to host:port (not yet running) and its socket map;
    raises OSError if it cannot listen."""
    sockets: dict[int, Any] = {}
    server = waitress.create_server(
        app,
        map=sockets,
        host=host,
        port=port,
        threads=8,
        max_request_body_size=max_body,
        ident="mlmd_server",
    )
    return server, sockets


def stop_web_server(server: Any, sockets: dict[int, Any], thread: threading.Thread) -> None:
    """Lets the calls in progress finish (3 s at most), then closes every socket from the
    server's own loop thread, which then ends."""
    server.task_dispatcher.shutdown(timeout=3)
    server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
    thread.join(2)


def channel_options(spec: str) -> list[tuple[str, int | str]]:
    """--grpc_channel_arguments: comma-separated key=value; integers are passed as integers."""
    options: list[tuple[str, int | str]] = []
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FlagError(f"--grpc_channel_arguments: {item!r} is not key=value")
        try:
            options.append((key, int(value)))
        except ValueError:
            options.append((key, value))
    return options


def connect(cfg: StoreConfig, retries: int, stop: threading.Event) -> Any:
    """Creates (and migrates) the schema at start, retrying while the database comes up.
    Returns None if stop is set meanwhile."""
    attempt = 0
    while True:
        try:
            return create_store(cfg.connection, cfg.migration)
        except RuntimeError as e:
            attempt += 1
            if attempt > retries:
                raise
            LOG.warning(
                "connecting to %s failed (%s); retry %d of %d", cfg.description, e, attempt, retries
            )
            if stop.wait(min(2.0 * attempt, 10.0)):
                return None


def serve(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        flags = parse_flags(argv)
        if flags.grpc_port <= 0:
            raise FlagError(f"grpc_port is invalid: {flags.grpc_port}")
        if not 0 <= flags.grpc_web_port < 65536 or flags.grpc_web_port == flags.grpc_port:
            raise FlagError(f"grpc_web_port is invalid: {flags.grpc_web_port}")
        cfg = store_config(flags)
        options = channel_options(flags.grpc_channel_arguments)
    except FlagError as e:
        LOG.error("%s", e)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        first = connect(cfg, flags.metadata_store_connection_retries, stop)
    except RuntimeError as e:
        LOG.error(
            "MetadataStore cannot be created with the given connection config (%s): %s",
            cfg.description,
            e,
        )
        return 1
    if stop.is_set():
        LOG.info("stopped before the database was reachable")
        return 0
    stores = Stores(cfg, first)
    del first  # a database server's schema store is not kept: each call connects anew
    handler, missing = make_handler(stores)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16), options=options, handlers=[handler]
    )
    address = f"{flags.grpc_host}:{flags.grpc_port}"
    if cfg.ssl is not None:
        ssl = cfg.ssl
        creds = grpc.ssl_server_credentials(
            [(ssl.server_key.encode(), ssl.server_cert.encode())],
            root_certificates=ssl.custom_ca.encode() or None,
            require_client_auth=ssl.client_verify,
        )
        bound = server.add_secure_port(address, creds)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        LOG.error("cannot listen on %s", address)
        return 1
    listening = f"{address} ({'TLS' if cfg.ssl is not None else 'plaintext'})"
    web: tuple[Any, dict[int, Any], threading.Thread] | None = None
    if flags.grpc_web_port:
        # gRPC's own limit on a request (4 MiB unless the channel arguments say otherwise).
        limit = dict(options).get("grpc.max_receive_message_length", 4 * 1024 * 1024)
        max_message = limit if isinstance(limit, int) else 4 * 1024 * 1024
        web_address = f"{flags.grpc_host}:{flags.grpc_web_port}"
        try:
            web_srv, sockets = web_server(
                GrpcWeb(handler, max_message),
                flags.grpc_host,
                flags.grpc_web_port,
                # base64 and framing around the largest message; waitress answers 413 past it
                max_message * 4 // 3 + 1024 if max_message >= 0 else 1 << 30,
            )
        except OSError as e:
            LOG.error("cannot listen on %s for grpc-web: %s", web_address, e)
            server.stop(None)
            return 1
        thread = threading.Thread(target=web_srv.run, name="grpc-web", daemon=True)
        web = (web_srv, sockets, thread)
        listening += f", grpc-web on {web_address} (HTTP/1.1, plaintext)"
    server.start()
    if web is not None:
        web[2].start()
    LOG.info(
        "Server listening on %s; %s; %d methods, unimplemented: %s; ml-metadata %s",
        listening,
        cfg.description,
        len(method_names()) - len(missing),
        ", ".join(missing) or "none",
        _mlmd_version(),
    )
    while not stop.wait(1.0):
        pass
    LOG.info("stopping")
    stopped = server.stop(grace=3)
    if web is not None:
        stop_web_server(*web)
    stopped.wait(5)
    return 0


def _mlmd_version() -> str:
    from ml_metadata import version

    return str(version.__version__)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
