"""The KServe predictor: symptom names (or the 0/1 vector) in, ranked differential out.

``DiseaseClassifier`` is a ``kserve.Model`` as KServe's sklearnserver is one: ``load`` reads the
model folder and sets ``ready``; KServe's data plane calls ``preprocess`` (decode and validate
the v1 or v2 request into a ``Query``), ``predict`` (rank) and ``postprocess`` (encode the v1
or v2 answer) for v1 REST, v2 REST and v2 gRPC, and observes its latency histograms around
them. Decoding is ``serving.decoding``'s, encoding ``serving.protocol``'s; ranking is
``symptom_dx``'s.

A request with many symptoms is decoded and ranked in a worker thread, so health checks and
small requests never wait behind it; ``symptom_dx.contract``'s limits bound its cost.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from serving import decoding, metrics, protocol
from serving.protocol import NeedsWorker, Query, RequestRejected, Tensor
from serving.storage import fetch_model_dir
from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME
from symptom_dx.free_text import parse_symptoms
from symptom_dx.model import Differential, RankedColumns, SymptomClassifier

logger = logging.getLogger("kserve")
T = TypeVar("T")

# Requests with more characters of symptom names, or more symptoms, than these are decoded and
# ranked in the worker thread (a one-symptom-list request is ~100 characters, ~3 symptoms), and
# so are those with a name to match approximately, and answers of more cells (patients x top_k)
# are encoded there: the event loop keeps answering health checks meanwhile.
INLINE_CHARS = 4096
INLINE_SYMPTOMS = 256
INLINE_CELLS = 2048


@dataclass
class Envelope:
    """What the answer must echo of the request: protocol, id, binary outputs."""

    v1: bool = False
    request_id: str | None = None
    binary_outputs: bool = False


@dataclass
class Decoded:
    query: Query
    envelope: Envelope


@dataclass
class Ranked:
    query: Query
    envelope: Envelope
    results: list[Differential] | RankedColumns  # v1: Differentials; v2: columns


class DiseaseClassifier(Model):
    """Loads ``model.joblib`` + ``metadata.json`` from ``model_dir`` (a folder or a URI).

    ``sha256`` (hex), if given, must be the digest of ``model.joblib``: it is checked before
    the file is unpickled.
    """

    def __init__(
        self,
        name: str = MODEL_NAME,
        model_dir: str = "",
        cache_dir: str | None = None,
        sha256: str = "",
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.sha256 = sha256
        self.classifier: SymptomClassifier | None = None
        self.metrics: metrics.ModelMetrics | None = None
        # One thread: large requests queue for it, and the event loop keeps answering.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-large")

    # -- lifecycle ------------------------------------------------------------------------------
    def load(self) -> bool:
        path = fetch_model_dir(self.model_dir, self.cache_dir)
        classifier = SymptomClassifier.load(path, sha256=self.sha256)
        self.metrics = metrics.ModelMetrics(self.name, classifier.classes, classifier.reference)
        self.classifier = classifier
        # Warm the caches (vocabulary, the free-text lexicon, numpy kernels) so the first
        # request is not the slow one. Korean analysis loads here too, before the server is
        # ready: loading Kiwi (1-3 s) holds the GIL up to ~0.5 s at a time, which would stall
        # every request of a server already answering.
        warm = Tensor(contract.SYMPTOMS.name, contract.BYTES, [2], ["itching", "a bad cough"])
        self.rank_columns(self.decode([warm], None), record=False)
        parse_symptoms("열이 나요")
        self.ready = True
        return self.ready

    @property
    def n_classes(self) -> int:
        return len(self.classifier.classes) if self.classifier else 0

    def get_input_types(self) -> list[dict]:
        return protocol.input_types()

    def get_output_types(self) -> list[dict]:
        return protocol.output_types()

    # -- the pieces every path shares ---------------------------------------------------------
    def decode(self, tensors: list[Tensor], parameters: Any, inline: bool = False) -> Query:
        """Input tensors and request parameters -> Query, or RequestRejected (or, with
        ``inline``, NeedsWorker)."""
        return decoding.decode_inputs(tensors, parameters, self.n_classes, inline)

    def decode_json(self, body: bytes, inline: bool = False) -> tuple[Query, str | None]:
        """A v2 JSON infer request body -> (Query, request id), or RequestRejected."""
        tensors, parameters, request_id = decoding.parse_v2_json(body)
        return self.decode(tensors, parameters, inline), request_id

    @staticmethod
    def decode_inline(large: bool, decode: Callable[..., T], *args: Any) -> T | None:
        """``decode(*args)`` (``decode`` or ``decode_json``) if it is cheap enough to run where
        the request arrived, the event loop or a gRPC thread (a small request of names, a few
        misspelt, or a short English sentence), else None."""
        if large:
            return None
        try:
            return decode(*args, inline=True)
        except NeedsWorker:
            return None

    async def decode_async(self, large: bool, decode: Callable[..., T], *args: Any) -> T:
        """``decode(*args)``: on the event loop when cheap (most requests: no await on the
        way), else in the worker."""
        decoded = self.decode_inline(large, decode, *args)
        if decoded is not None:
            return decoded
        return await self.off_loop(True, decode, *args)

    @staticmethod
    def costly(query: Query) -> bool:
        """Whether ranking and encoding the answer to ``query`` belong in the worker thread."""
        return query.size > INLINE_SYMPTOMS or len(query.present) * query.top_k > INLINE_CELLS

    def rank(self, query: Query, record: bool = True) -> list[Differential]:
        """One ``Differential`` a patient (the v1 answer)."""
        results = self.classifier.rank(query.present, query.top_k, absent=query.absent)
        if record:
            self.metrics.ranked(query.present, [r.diseases[0] for r in results], query.form)
        return results

    def rank_columns(self, query: Query, record: bool = True) -> RankedColumns:
        """The answer as the v2 output tensors' columns (many patients ranked as arrays)."""
        ranked = self.classifier.rank_columns(
            query.present, query.top_k, query.absent, contract.LIST_SEPARATOR
        )
        if record:
            self.metrics.ranked(query.present, ranked.top, query.form)
        return ranked

    def reject(self, error: RequestRejected) -> None:
        """Count a rejected request and log its reason code (never its symptoms); the server's
        edges call it (REST error handler, gRPC interceptor, fast path), once per request."""
        self.metrics.rejected(error.reason_code)
        logger.info("rejected a request to %s: %s", self.name, error.reason_code)

    def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the worker thread, waited for (from a thread of the gRPC server)."""
        return self._worker.submit(fn, *args).result()

    async def off_loop(self, large: bool, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, in the worker thread when ``large``."""
        if not large:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    # -- KServe's data plane: v1 REST, v2 REST (JSON and binary tensors), v2 gRPC ----------------
    async def preprocess(
        self, payload: dict | bytes | str | InferRequest, headers: dict[str, str] | None = None
    ) -> Decoded:
        if isinstance(payload, InferRequest):
            tensors = [tensor_of(i) for i in payload.inputs]
            large = text_chars(tensors) > INLINE_CHARS
            query = await self.decode_async(large, self.decode, tensors, payload.parameters)
            # parameters is a mapping now (decode checked it): binary_data_output can be read
            envelope = Envelope(False, payload.id, payload.use_binary_outputs)
            return Decoded(query, envelope)
        if isinstance(payload, bytes | str):  # a v1 body sent without a JSON content-type
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise RequestRejected("malformed_json", "malformed JSON") from None
        # v1 (not the fast path's protocol) is always decoded in the worker thread
        query = await self.off_loop(True, decoding.v1_query, payload, self.n_classes)
        return Decoded(query, Envelope(v1=True))

    def validate(self, payload: Decoded) -> Decoded:
        return payload  # preprocess has validated it against the contract

    async def predict(self, payload: Decoded, headers: dict[str, str] | None = None) -> Ranked:
        query = payload.query
        rank = self.rank if payload.envelope.v1 else self.rank_columns
        results = await self.off_loop(self.costly(query), rank, query)
        return Ranked(query, payload.envelope, results)

    async def postprocess(
        self, result: Ranked, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        if result.envelope.v1:  # predict ranked it into Differentials
            return {"predictions": protocol.v1_predictions(result.results)}
        outputs = [
            InferOutput(o["name"], o["shape"], o["datatype"], o["data"])
            for o in protocol.output_tensors(result.query, result.results)
        ]
        return InferResponse(
            response_id=result.envelope.request_id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=result.envelope.binary_outputs,
        )


def tensor_of(infer_input: Any) -> Tensor:
    """KServe's InferInput as a Tensor: JSON or gRPC contents, or raw binary data decoded by
    KServe's own ``as_numpy`` (binary tensor extension, gRPC ``raw_input_contents``)."""
    name, datatype, shape = infer_input.name, infer_input.datatype, infer_input.shape
    t = Tensor(name, datatype, shape, infer_input.data)
    if (t.data is None or (isinstance(t.data, list) and not t.data)) and datatype in _DECODABLE:
        protocol.check_shape(t)
        try:
            return Tensor(name, datatype, shape, infer_input.as_numpy().reshape(-1))
        except Exception:  # KServe's decoding raises struct.error, ValueError, TypeError, ...
            raise RequestRejected(
                "bad_shape", f"input '{name}' binary data does not match its datatype and shape"
            ) from None
    return t


_DECODABLE = frozenset({contract.BYTES, *contract.VECTOR_DATATYPES})


def text_chars(tensors: list[Tensor]) -> int:
    """Characters of the text elements of a request's tensors: what decides whether decoding
    it belongs in the worker thread. Only BYTES tensors are read as text (decoding rejects any
    other before reading its data), so a numeric tensor's elements are not even looked at."""
    return sum(
        len(v)
        for t in tensors
        if t.datatype == contract.BYTES and isinstance(t.data, list)
        for v in t.data
        if isinstance(v, str | bytes)
    )
