"""S3 storage through the `minio` client: datasets and model folders in one bucket.

Uploads of a folder are all-or-nothing from a reader's point of view: on any failure the
objects already written under the prefix are removed before the error is raised.
"""

from __future__ import annotations

from pathlib import Path

import urllib3
from minio import Minio
from minio.credentials import IamAwsProvider
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from symptom_dx.errors import SymptomDxError
from symptom_dx.settings import S3Settings


class StorageError(SymptomDxError):
    """S3 could not be reached or refused an operation."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise StorageError(f"no bucket in {uri}")
    return bucket, key.strip("/")


class ObjectStore:
    def __init__(self, settings: S3Settings):
        self.settings = settings
        self.bucket = settings.bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=settings.timeout_s, read=settings.timeout_s * 6),
            retries=urllib3.Retry(total=1, backoff_factor=0.2),
        )
        access_key = settings.access_key.get_secret_value()
        self.client = Minio(
            settings.host,
            access_key=access_key or None,
            secret_key=settings.secret_key.get_secret_value() or None,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
            # No keys: EKS Pod Identity or IRSA (the web identity token) supply them.
            credentials=None if access_key else IamAwsProvider(),
        )

    def _fail(self, action: str, exc: Exception) -> StorageError:
        if isinstance(exc, S3Error):
            why = f"{exc.code}: {exc.message}"
        elif isinstance(exc, urllib3.exceptions.HTTPError):
            why = f"S3 at {self.settings.endpoint} is unreachable"
        else:
            why = str(exc)
        return StorageError(f"cannot {action}: {why}")

    def check(self, create_bucket: bool = True) -> None:
        """Fail fast, with one line, if the endpoint, the keys or the bucket are wrong."""
        try:
            if not self.client.bucket_exists(self.bucket):
                if not create_bucket:
                    raise StorageError(f"bucket '{self.bucket}' does not exist")
                self.client.make_bucket(self.bucket)
        except (S3Error, urllib3.exceptions.HTTPError, ValueError) as e:
            raise self._fail(f"use bucket '{self.bucket}'", e) from None

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def upload_file(self, path: Path, key: str) -> str:
        try:
            self.client.fput_object(self.bucket, key, str(path))
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
            raise self._fail(f"upload {path.name} to {self.uri(key)}", e) from None
        return self.uri(key)

    def upload_dir(self, directory: Path, prefix: str) -> str:
        """Upload every file of ``directory`` under ``prefix``; on failure remove what was put."""
        prefix = prefix.strip("/")
        written: list[str] = []
        try:
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                key = f"{prefix}/{path.relative_to(directory).as_posix()}"
                self.upload_file(path, key)
                written.append(key)
        except StorageError:
            self.delete_keys(written)
            raise
        return self.uri(prefix)

    def delete_keys(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            errors = self.client.remove_objects(self.bucket, [DeleteObject(k) for k in keys])
            for _ in errors:  # the iterator performs the deletes
                pass
        except (S3Error, urllib3.exceptions.HTTPError):
            pass  # best effort: the caller is already reporting the original failure

    def delete_prefix(self, prefix: str) -> None:
        self.delete_keys(self.list(prefix))

    def list(self, prefix: str = "") -> list[str]:
        try:
            return [
                o.object_name
                for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            ]
        except (S3Error, urllib3.exceptions.HTTPError) as e:
            raise self._fail(f"list {self.uri(prefix)}", e) from None

    def download_file(self, bucket: str, key: str, dest: Path) -> Path:
        try:
            self.client.fget_object(bucket, key, str(dest))
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
            raise self._fail(f"download s3://{bucket}/{key}", e) from None
        return dest

    def download_dir(self, uri: str, dest: Path) -> Path:
        bucket, prefix = split_s3_uri(uri)
        try:
            objects = list(self.client.list_objects(bucket, prefix=prefix + "/", recursive=True))
        except (S3Error, urllib3.exceptions.HTTPError) as e:
            raise self._fail(f"list {uri}", e) from None
        if not objects:
            raise StorageError(f"nothing stored under {uri}")
        for o in objects:
            target = dest / o.object_name[len(prefix) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.download_file(bucket, o.object_name, target)
        return dest
