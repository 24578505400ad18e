"""The optional JSON fast path (``--fast_path``, on by default): plain JSON v2 infer requests
for a served model are answered here, bytes in and bytes out, instead of by KServe's FastAPI
app, whose request and response models are most of a small request's cost (``make bench``
measures both in one run).

It decodes, ranks and encodes through the same ``DiseaseClassifier`` methods as KServe's path,
so both answer alike (``tests/serving`` runs the same requests through both), and it observes
KServe's latency histograms. Binary tensors, CloudEvents and every other route go to KServe.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import orjson
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME, get_labels
from starlette.types import Scope

from serving.model import INLINE_CHARS, INLINE_SYMPTOMS, DiseaseClassifier
from serving.protocol import RequestRejected, output_tensors

JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPath:
    """Which requests the fast path answers, and the answers."""

    def __init__(self, models: Iterable[DiseaseClassifier]):
        models = list(models)
        self.routes = {f"/v2/models/{m.name}/infer": m for m in models}
        stages = (PRE_HIST_TIME, PREDICT_HIST_TIME, POST_HIST_TIME)
        self._hist = {m.name: [h.labels(**get_labels(m.name)) for h in stages] for m in models}

    def model_for(self, scope: Scope) -> DiseaseClassifier | None:
        """The served, ready model a plain JSON v2 infer request is for, else None."""
        if scope["method"] != "POST":
            return None
        model = self.routes.get(scope["path"])
        if model is None or not model.ready or not _plain_json(scope["headers"]):
            return None
        return model

    async def answer(self, model: DiseaseClassifier, body: bytes) -> tuple[int, bytes]:
        """A v2 REST JSON request body -> (HTTP status, JSON response body)."""
        t0 = time.perf_counter()
        try:
            if len(body) > INLINE_CHARS:
                query, request_id = await model.off_loop(True, model.decode_json, body)
            else:  # most requests: no await on the way
                query, request_id = model.decode_json(body)
            t1 = time.perf_counter()
            if query.size > INLINE_SYMPTOMS:
                results = await model.off_loop(True, model.rank, query)
            else:
                results = model.rank(query)
            t2 = time.perf_counter()
            response = orjson.dumps(
                {
                    "model_name": model.name,
                    "model_version": None,
                    "id": request_id or str(uuid.uuid4()),
                    "parameters": None,
                    "outputs": output_tensors(results, query.top_k),
                }
            )
        except RequestRejected as e:
            model.reject(e)
            return 400, orjson.dumps({"error": str(e)})
        t3 = time.perf_counter()
        pre, predict, post = self._hist[model.name]
        pre.observe(t1 - t0)
        predict.observe(t2 - t1)
        post.observe(t3 - t2)
        return 200, response


def _plain_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """False for the binary tensor extension and binary CloudEvents (KServe decodes those)."""
    for key, _ in headers:
        if key == b"inference-header-content-length" or key.startswith(b"ce-"):
            return False
    return True
