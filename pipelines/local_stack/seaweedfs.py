"""The local S3 server's other doors, closed: only the S3 port, with signature checks, is open.

``weed mini`` runs a master, a volume server, a filer and an S3 gateway in one process. Out of
the box their HTTP and gRPC ports (and gRPC Unix sockets in /tmp) read, write and delete
bucket objects with no credentials at all. ``start_s3`` closes them:

- ``-disableHttp``: the master's and the filer's HTTP APIs are not served (404);
- JWT signing keys: the volume server's HTTP port (the S3 gateway writes chunks through it)
  accepts a read or a write only with a token signed by this process's key;
- mutual TLS on every gRPC port and socket: a client needs a certificate from a CA made for
  this start (``security.toml``, keys readable by the owner only).

Everything here is made anew at each start: nothing stored depends on these keys.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from pipelines.local_stack.pki import make_ca, make_cert

# The gRPC servers and clients `weed mini` runs (sections of SeaweedFS's security.toml).
GRPC_COMPONENTS = (
    "master",
    "volume",
    "filer",
    "s3",
    "admin",
    "worker",
    "msg_broker",
    "msg_agent",
    "mq",
    "client",
)
JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
SECURITY_FILE = "security.toml"


def _private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA made for this start and one certificate it signed (server and client use), valid for
    127.0.0.1; the CA's key is deleted once it has signed. Returns (ca.crt, tls.crt, tls.key)."""
    for stale in ("ca.crt", "ca.key", "tls.crt", "tls.key"):
        (folder / stale).unlink(missing_ok=True)
    make_ca(folder, "ca", f"symptom-dx local S3 CA {secrets.token_hex(4)}", days=365)
    make_cert(
        folder,
        "tls",
        "ca",
        "/CN=seaweedfs",
        "serverAuth,clientAuth",
        "DNS:localhost,IP:127.0.0.1",
        days=365,
    )
    (folder / "ca.key").unlink()  # nothing else is ever signed by this start's CA
    return folder / "ca.crt", folder / "tls.crt", folder / "tls.key"


def write_security_config(folder: Path) -> Path:
    """SeaweedFS's ``security.toml`` (JWT keys, gRPC mTLS) in ``folder`` (mode 0700); returns
    the folder, for ``weed -config_dir``."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca, cert, key = make_certificates(folder)
    lines = [f'[grpc]\nca = "{ca}"\n']
    lines += [f'[grpc.{c}]\ncert = "{cert}"\nkey = "{key}"\n' for c in GRPC_COMPONENTS]
    lines += [f'[{s}]\nkey = "{secrets.token_urlsafe(32)}"\n' for s in JWT_SECTIONS]
    lines.append("[access]\nui = false\n")  # the volume server's status page
    _private(folder / SECURITY_FILE, "\n".join(lines).encode())
    return folder


def grpc_sockets(grpc_ports: dict[str, int]) -> list[Path]:
    """The Unix sockets `weed mini` opens in /tmp for its gRPC ports (not configurable; under
    mTLS like the ports). They stay after the process ends: remove them then."""
    return [Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock") for name, port in grpc_ports.items()]


def remove_stale_sockets() -> list[Path]:
    """Remove /tmp/seaweedfs-*.sock files no process listens on any more (left by a server that
    was killed); return them."""
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return []
    bound = {line.split()[-1] for line in lines if len(line.split()) >= 8}
    stale = [p for p in Path("/tmp").glob("seaweedfs-*.sock") if str(p) not in bound]
    for path in stale:
        with contextlib.suppress(OSError):  # another user's, or gone meanwhile
            path.unlink()
    return stale
