"""fetch() from a path, a real HTTP server and a real S3 server on loopback, with sha256."""

import functools
import http.server
import io
import threading

import pytest
from minio import Minio
from testkit import S3_ACCESS_KEY, S3_SECRET_KEY

from symptom_dx.errors import SourceError
from symptom_dx.sources import fetch, sha256_of

TRAINING_SHA = "cc00c869b702c0c90eef3c1fb4d0b54f16965f8def2dec7e1bf91d0b76480ac3"


@pytest.fixture(scope="module")
def http_root(data_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_local_path_with_checksum(tmp_path, data_dir):
    out = fetch(str(data_dir / "Training.csv"), tmp_path / "t.csv", sha256=TRAINING_SHA)
    assert sha256_of(out) == TRAINING_SHA


def test_http_download_with_checksum(tmp_path, http_root):
    out = fetch(f"{http_root}/Training.csv", tmp_path / "t.csv", sha256=TRAINING_SHA)
    assert sha256_of(out) == TRAINING_SHA


def test_http_404_is_one_line(tmp_path, http_root):
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch(f"{http_root}/nope.csv", tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_leaves_nothing(tmp_path, http_root):
    with pytest.raises(SourceError, match="checksum mismatch"):
        fetch(f"{http_root}/Testing.csv", tmp_path / "t.csv", sha256=TRAINING_SHA)
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        fetch(str(tmp_path / "missing.csv"), tmp_path / "t.csv")


@pytest.mark.integration
def test_s3_uri(tmp_path, s3_server, data_dir, monkeypatch):
    client = Minio(
        s3_server.url.removeprefix("http://"), S3_ACCESS_KEY, S3_SECRET_KEY, secure=False
    )
    if not client.bucket_exists("sources-test"):
        client.make_bucket("sources-test")
    body = (data_dir / "Training.csv").read_bytes()
    client.put_object("sources-test", "raw/Training.csv", io.BytesIO(body), len(body))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    out = fetch("s3://sources-test/raw/Training.csv", tmp_path / "t.csv", sha256=TRAINING_SHA)
    assert sha256_of(out) == TRAINING_SHA
    with pytest.raises(SourceError, match="NoSuchKey"):
        fetch("s3://sources-test/raw/missing.csv", tmp_path / "m.csv")
