"""The fast path (``--fast_path``, on by default): v2 infer requests for a served model are
answered here, straight from the request to the response, instead of through KServe's data
plane, whose request and response objects are most of a small request's cost (``make bench``
measures both in one run):

- REST: plain JSON bodies, bytes in and bytes out, instead of KServe's FastAPI app;
- gRPC: ``ModelInfer`` messages, decoded from and encoded into protobuf
  (``serving.grpc_tensors``), instead of KServe's ``InferRequest``/``InferResponse``.

It decodes, ranks and encodes through the same ``DiseaseClassifier`` methods as KServe's path,
so both answer alike (``tests/serving`` runs the same requests through both), and it observes
KServe's latency histograms. REST binary tensors, CloudEvents and every other route or RPC go
to KServe.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME, get_labels
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from starlette.types import Scope

from serving.decoding import parse_v2_json
from serving.grpc_tensors import grpc_response, grpc_tensors
from serving.model import INLINE_CHARS, DiseaseClassifier, text_chars
from serving.protocol import Query, RequestRejected, Tensor, output_tensors

JSON_HEADERS = [(b"content-type", b"application/json")]
# JSON bodies up to this size are parsed on the event loop, and decoded there too unless their
# text is long (``INLINE_CHARS``): 64 patients as 0/1 vectors are 17-35 KB, which the hand-off
# to the worker thread made ~10% costlier; the most this holds the loop is ~1.2 ms here (248
# rows of 0/1 integers: parse 0.3 ms, numbers to positions 0.9 ms).
INLINE_BODY_BYTES = 64 * 1024


class FastPath:
    """Which requests the fast path answers, and the answers."""

    def __init__(self, models: Iterable[DiseaseClassifier]):
        models = list(models)
        self.routes = {f"/v2/models/{m.name}/infer": m for m in models}
        self.models = {m.name: m for m in models}
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

    def grpc_model_for(self, request: pb.ModelInferRequest) -> DiseaseClassifier | None:
        """The served, ready model a ModelInfer request is for (no version asked), else None."""
        model = self.models.get(request.model_name)
        if model is None or not model.ready or request.model_version:
            return None
        return model

    async def answer(self, model: DiseaseClassifier, body: bytes) -> tuple[int, bytes]:
        """A v2 REST JSON request body -> (HTTP status, JSON response body). Most requests
        (names, short English sentences, a few dozen patients) are answered on the event loop
        with no await on the way; any other in one job of the model's worker thread, so that
        requests queued there are finished one by one, not held half-done together."""
        start = time.perf_counter()  # the preprocess histogram counts the parsing too
        try:
            if len(body) > INLINE_BODY_BYTES:  # even parsing it belongs in the worker
                decode = functools.partial(model.decode_json, body)
                job = _job(model, True, decode, _json, start)
            else:  # parsed here; decoded here too unless its text is long (as gRPC's)
                tensors, parameters, request_id = parse_v2_json(body)
                job = _tensors_job(model, tensors, parameters, request_id, _json, start)
            if _inline(job):
                response, times = _respond(*job)
            else:
                response, times = await model.off_loop(True, _respond, *job)
        except RequestRejected as e:
            model.reject(e)
            return 400, orjson.dumps({"error": str(e)})
        self._observe(model, times)
        return 200, response

    def answer_grpc(
        self, model: DiseaseClassifier, request: pb.ModelInferRequest
    ) -> pb.ModelInferResponse:
        """A v2 gRPC ModelInfer request -> its response, in the calling thread (one of the
        threaded gRPC server's), a large one in the model's worker thread as on REST; errors
        raise (the gRPC service maps and counts them)."""
        start = time.perf_counter()
        raw = bool(request.raw_input_contents)  # KServe answers raw inputs with raw outputs
        encode = functools.partial(grpc_response, raw=raw)
        tensors = grpc_tensors(request)
        job = _tensors_job(model, tensors, request.parameters, request.id, encode, start)
        response, times = _respond(*job) if _inline(job) else model.in_worker(_respond, *job)
        self._observe(model, times)
        return response

    def _observe(self, model: DiseaseClassifier, times: tuple[float, float, float]) -> None:
        for histogram, seconds in zip(self._hist[model.name], times, strict=True):
            histogram.observe(seconds)


# What ``_respond`` is called with: the model, decode, encode, the request decoded already (or
# None: decode in the worker) and when the request began to be read.
_Job = tuple[DiseaseClassifier, Callable, Callable, "tuple[Query, str | None] | None", float]


def _job(
    model: DiseaseClassifier, large: bool, decode: Callable, encode: Callable, start: float
) -> _Job:
    """The job of a request, decoded here unless ``large`` (its text is long) or costly."""
    return model, decode, encode, model.decode_inline(large, decode), start


def _tensors_job(
    model: DiseaseClassifier,
    tensors: list[Tensor],
    parameters: Any,
    request_id: str | None,
    encode: Callable,
    start: float,
) -> _Job:
    """``_job`` of a request read into tensors: only text decides where to decode it (numbers
    are cheap to read, ``text_chars``)."""

    def decode(inline: bool = False) -> tuple[Query, str | None]:
        return model.decode(tensors, parameters, inline), request_id

    return _job(model, text_chars(tensors) > INLINE_CHARS, decode, encode, start)


def _inline(job: _Job) -> bool:
    """Whether the rest of the answer is cheap enough to run here (else: the worker)."""
    model, _, _, decoded, _ = job
    return decoded is not None and not model.costly(decoded[0])


def _respond(
    model: DiseaseClassifier,
    decode: Callable,
    encode: Callable,
    decoded: tuple[Query, str | None] | None,
    start: float,
) -> tuple[Any, tuple[float, float, float]]:
    """Decode (unless done), rank and encode: (the response, seconds of each stage)."""
    query, request_id = decoded or decode()
    t1 = time.perf_counter()
    ranked = model.rank_columns(query)
    t2 = time.perf_counter()
    response = encode(model.name, request_id or str(uuid.uuid4()), output_tensors(query, ranked))
    return response, (t1 - start, t2 - t1, time.perf_counter() - t2)


def _json(model_name: str, request_id: str, outputs: list[dict]) -> bytes:
    return orjson.dumps(
        {
            "model_name": model_name,
            "model_version": None,
            "id": request_id,
            "parameters": None,
            "outputs": outputs,
        }
    )


def _plain_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """False for the binary tensor extension and binary CloudEvents (KServe decodes those)."""
    for key, _ in headers:
        if key == b"inference-header-content-length" or key.startswith(b"ce-"):
            return False
    return True
