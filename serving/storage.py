"""Where the model folder comes from: a local path, or a URI that KServe's storage
initializer understands (``s3://bucket/prefix``, ``gs://``, ``https://``, ...).

Remote URIs are downloaded with ``kserve_storage.Storage`` into a fresh folder, exactly as the
storage initializer does in a cluster. For ``s3://`` on MinIO or SeaweedFS set
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``
and ``S3_VERIFY_SSL=0`` (``S3_ENDPOINT`` alone is ignored by kserve_storage).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from symptom_dx.errors import SymptomDxError


class ModelFetchError(SymptomDxError):
    """The model folder could not be found or downloaded."""


def fetch_model_dir(uri: str, cache_dir: str | Path | None = None) -> Path:
    """A local folder holding the model files for ``uri`` (downloaded if remote)."""
    if not uri:
        raise ModelFetchError("no model given: pass --model_dir (a folder or an s3:// URI)")
    if "://" not in uri:
        path = Path(uri).expanduser()
        if not path.is_dir():
            raise ModelFetchError(f"model directory {path} does not exist")
        return path
    from kserve_storage import Storage

    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    out = tempfile.mkdtemp(prefix="disease-classifier-", dir=cache_dir)
    try:
        return Path(Storage.download(uri, out_dir=out))
    except Exception as e:  # kserve_storage raises bare Exception/RuntimeError/boto errors
        raise ModelFetchError(f"could not download the model from {uri}: {e}") from e
