"""Fetch a data file from a local path, an http(s) URL or an s3:// URI, checking its sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import httpx

from symptom_dx.errors import SourceError
from symptom_dx.settings import S3Settings


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(source: str, dest: Path, sha256: str = "", timeout_s: float = 30.0) -> Path:
    """Copy ``source`` to ``dest``; verify ``sha256`` when given. ``dest`` appears only if whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if source.startswith(("http://", "https://")):
            _fetch_http(source, tmp, timeout_s)
        elif source.startswith("s3://"):
            _fetch_s3(source, tmp)
        else:
            path = Path(source.removeprefix("file://"))
            if not path.is_file():
                raise SourceError(f"data source not found: {path}")
            shutil.copyfile(path, tmp)
        if sha256:
            actual = sha256_of(tmp)
            if actual != sha256.lower():
                raise SourceError(
                    f"checksum mismatch for {source}: expected sha256 {sha256}, got {actual}"
                )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _fetch_http(url: str, dest: Path, timeout_s: float) -> None:
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as r:
            if r.status_code != 200:
                raise SourceError(f"cannot download {url}: HTTP {r.status_code}")
            with open(dest, "wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
    except httpx.HTTPError as e:
        raise SourceError(f"cannot download {url}: {e}") from None


def _fetch_s3(uri: str, dest: Path) -> None:
    from symptom_dx.storage import ObjectStore, StorageError, split_s3_uri

    bucket, key = split_s3_uri(uri)
    try:
        ObjectStore(S3Settings()).download_file(bucket, key, dest)
    except StorageError as e:
        raise SourceError(str(e)) from None
