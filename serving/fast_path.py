"""The optional JSON fast path (``--fast_path``, on by default): plain JSON v2 infer requests
for a served model are answered here, bytes in and bytes out, instead of by KServe's FastAPI
app, whose request and response models are most of a small request's cost (``make bench``
measures both in one run).

It decodes, ranks and encodes through the same ``DiseaseClassifier`` methods as KServe's path,
so both answer alike (``tests/serving`` runs the same requests through both), and it observes
KServe's latency histograms. Binary tensors, CloudEvents and every other route go to KServe.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable

import orjson
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME, get_labels
from starlette.types import Scope

from serving.model import INLINE_CHARS, DiseaseClassifier
from serving.protocol import NeedsFuzzyMatching, Query, RequestRejected, output_tensors

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
        """A v2 REST JSON request body -> (HTTP status, JSON response body).

        Most requests (small, exact names) are answered on the event loop with no await on the
        way; any other is decoded, ranked and encoded in one job of the model's worker thread,
        so that requests queued there are finished one by one, not held half-done together.
        """
        start = time.perf_counter()
        try:
            decoded = None
            if len(body) <= INLINE_CHARS:
                with contextlib.suppress(NeedsFuzzyMatching):
                    decoded = model.decode_json(body, exact_only=True)
            if decoded is not None and not model.costly(decoded[0]):
                response, times = _respond(model, body, decoded, start)
            else:
                job = (model, body, decoded, start)
                response, times = await model.off_loop(True, _respond, *job)
        except RequestRejected as e:
            model.reject(e)
            return 400, orjson.dumps({"error": str(e)})
        for histogram, seconds in zip(self._hist[model.name], times, strict=True):
            histogram.observe(seconds)
        return 200, response


def _respond(
    model: DiseaseClassifier,
    body: bytes,
    decoded: tuple[Query, str | None] | None,
    start: float,
) -> tuple[bytes, tuple[float, float, float]]:
    """Decode (unless done), rank and encode: (the response body, seconds of each stage)."""
    query, request_id = decoded or model.decode_json(body)
    t1 = time.perf_counter()
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
    return response, (t1 - start, t2 - t1, time.perf_counter() - t2)


def _plain_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """False for the binary tensor extension and binary CloudEvents (KServe decodes those)."""
    for key, _ in headers:
        if key == b"inference-header-content-length" or key.startswith(b"ce-"):
            return False
    return True
