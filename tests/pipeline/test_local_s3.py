"""The local S3 server (SeaweedFS) can be used only with its keys: every other door is shut.

`weed mini` also runs a master, a volume server and a filer whose HTTP and gRPC ports would
otherwise read, write and delete bucket objects with no credentials.
"""

import io

import grpc
import httpx
import pytest
from testkit import S3_ACCESS_KEY, S3_SECRET_KEY

from pipelines.local_stack.seaweedfs import SECURITY_FILE, grpc_sockets

pytestmark = pytest.mark.integration
BUCKET = "locked-down"
KEY = "models/disease-classifier/model.joblib"
BODY = b"the champion" * 100


@pytest.fixture(scope="module")
def s3(s3_server):
    from minio import Minio

    client = Minio(
        s3_server.url.removeprefix("http://"), S3_ACCESS_KEY, S3_SECRET_KEY, secure=False
    )
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    client.put_object(BUCKET, KEY, io.BytesIO(BODY), len(BODY))
    return s3_server, client


def unchanged(client) -> bool:
    return client.get_object(BUCKET, KEY).read() == BODY


def test_the_s3_port_wants_a_signature(s3):
    server, client = s3
    assert unchanged(client)
    url = f"{server.url}/{BUCKET}/{KEY}"
    assert httpx.get(url).status_code == 403
    assert httpx.put(url, content=b"evil").status_code == 403
    assert httpx.delete(url).status_code == 403
    assert unchanged(client)


def test_filer_and_master_http_apis_are_off(s3):
    server, client = s3
    ports = server.extra["http_ports"]
    filer = f"http://127.0.0.1:{ports['filer']}/buckets/{BUCKET}/{KEY}"
    master = f"http://127.0.0.1:{ports['master']}"
    answers = {
        "filer GET": httpx.get(filer),
        "filer PUT": httpx.put(filer, content=b"evil"),
        "filer POST": httpx.post(filer, files={"file": ("x", b"evil")}),
        "filer DELETE": httpx.delete(filer),
        "master assign": httpx.get(f"{master}/dir/assign"),
        "master delete collection": httpx.get(f"{master}/col/delete?collection={BUCKET}"),
    }
    assert {k: r.status_code for k, r in answers.items() if r.status_code < 400} == {}
    assert unchanged(client)


def test_the_volume_server_wants_a_signed_token(s3):
    server, client = s3
    volume = f"http://127.0.0.1:{server.extra['http_ports']['volume']}/1,0123456789"
    assert httpx.post(volume, files={"file": ("x", b"evil")}).status_code == 401
    assert httpx.get(volume).status_code == 401
    assert httpx.delete(volume).status_code == 401
    assert unchanged(client)


def grpc_answers(target: str, credentials=None) -> grpc.StatusCode | None:
    """None if the server answered a call at all (even 'unimplemented'), else the error."""
    channel = (
        grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    )
    with channel:
        call = channel.unary_unary("/filer_pb.SeaweedFiler/Ping")
        try:
            call(b"", timeout=3)
        except grpc.RpcError as e:
            return None if e.code() != grpc.StatusCode.UNAVAILABLE else e.code()
    return None


def test_grpc_wants_a_client_certificate(s3):
    server, client = s3
    ports = server.extra["grpc_ports"]
    ca = (server.extra["config_dir"] / "ca.crt").read_bytes()
    targets = [f"127.0.0.1:{port}" for port in ports.values()]
    targets += [f"unix:{path}" for path in grpc_sockets(ports) if path.exists()]
    assert any(t.startswith("unix:") for t in targets), "weed mini opened no gRPC socket"
    # in the clear, and over TLS with the right CA but no client certificate
    tls_without_cert = grpc.ssl_channel_credentials(root_certificates=ca)
    for target in targets:
        assert grpc_answers(target) == grpc.StatusCode.UNAVAILABLE, target
        if not target.startswith("unix:"):
            assert grpc_answers(target, tls_without_cert) == grpc.StatusCode.UNAVAILABLE, target
    # the control: with the certificate the same call is answered
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(server.extra["config_dir"] / "tls.key").read_bytes(),
        certificate_chain=(server.extra["config_dir"] / "tls.crt").read_bytes(),
    )
    assert grpc_answers(f"127.0.0.1:{ports['filer']}", with_cert) is None
    assert unchanged(client)


def test_its_secrets_are_the_owners_only(s3):
    server, _ = s3
    folder = server.extra["config_dir"]
    assert folder.stat().st_mode & 0o077 == 0
    assert (folder / SECURITY_FILE).stat().st_mode & 0o077 == 0
    assert (folder / "tls.key").stat().st_mode & 0o077 == 0


def test_an_internal_port_taken_before_it_binds_is_picked_again(tmp_path, monkeypatch):
    """SeaweedFS's own ports are picked free a moment before it binds them; another server
    starting in between must cost a second try, not the run."""
    import socket

    from pipelines.local_stack import services

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy])  # the first internal port it picks
        real = services.free_port
        monkeypatch.setattr(services, "free_port", lambda: next(picks, None) or real())
        logs = tmp_path / "logs"
        svc = services.start_s3(
            tmp_path / "s3", real(), S3_ACCESS_KEY, S3_SECRET_KEY, logs, (BUCKET,)
        )
        try:
            assert f"port {busy} for" in (logs / "s3.log").read_text()  # the first try said so
        finally:
            svc.stop()
