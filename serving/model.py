"""The KServe predictor: symptom names (or the 0/1 vector) in, ranked differential out.

``DiseaseClassifier`` is a ``kserve.Model``: KServe's data plane calls ``predict`` for v1 REST,
v2 gRPC and v2 REST requests it decodes itself. ``infer_json`` answers a v2 REST JSON body
directly (bytes in, bytes out); ``serving.server`` routes plain JSON v2 infer requests to it
and so skips FastAPI/pydantic request and response models, the slowest part of a small
request. Both paths decode and encode through ``serving.protocol`` and rank through
``symptom_dx``, so they answer the same.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import numpy as np
import orjson
from kserve import Model
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME, get_labels
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse

from serving import metrics
from serving.protocol import (
    MAX_PATIENTS,
    MODEL_NAME,
    Query,
    RequestRejected,
    decode_inputs,
    input_types,
    output_tensors,
    output_types,
    positions_from_names,
    top_k_from,
    v1_predictions,
)
from serving.storage import fetch_model_dir
from symptom_dx.model import Differential, SymptomClassifier

logger = logging.getLogger("kserve")


class DiseaseClassifier(Model):
    """Loads ``model.joblib`` + ``metadata.json`` from ``model_dir`` (a folder or a URI)."""

    def __init__(self, name: str = MODEL_NAME, model_dir: str = "", cache_dir: str | None = None):
        super().__init__(name)
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.classifier: SymptomClassifier | None = None
        self._metrics: metrics.ModelMetrics | None = None
        labels = get_labels(name)
        self._pre_hist = PRE_HIST_TIME.labels(**labels)
        self._predict_hist = PREDICT_HIST_TIME.labels(**labels)
        self._post_hist = POST_HIST_TIME.labels(**labels)

    # -- lifecycle ----------------------------------------------------------------------------
    def load(self) -> bool:
        path = fetch_model_dir(self.model_dir, self.cache_dir)
        self.classifier = SymptomClassifier.load(path)
        self._metrics = metrics.ModelMetrics(self.name, self.classifier.classes)
        # Warm the caches (vocabulary, numpy kernels) so the first request is not the slow one.
        warm = decode_inputs([("symptoms", "BYTES", [1], ["itching"])], None, self.n_classes)
        self.rank(warm, record=False)
        self.ready = True
        return self.ready

    @property
    def n_classes(self) -> int:
        return len(self.classifier.classes) if self.classifier else 0

    def get_input_types(self) -> list[dict]:
        return input_types()

    def get_output_types(self) -> list[dict]:
        return output_types()

    # -- ranking ------------------------------------------------------------------------------
    def rank(self, query: Query, record: bool = True) -> list[Differential]:
        results = self.classifier.rank(query.present, query.top_k, absent=query.absent)
        if record:
            self._metrics.ranked(query.present, results, query.form)
        return results

    # -- KServe data plane (v1 REST, v2 gRPC, v2 REST with binary tensors) ----------------------
    def predict(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        if isinstance(payload, InferRequest):
            tensors = [(i.name, i.datatype, i.shape, _tensor_data(i)) for i in payload.inputs]
            query = decode_inputs(tensors, payload.parameters, self.n_classes)
            outputs = [
                InferOutput(o["name"], o["shape"], o["datatype"], o["data"])
                for o in output_tensors(self.rank(query), query.top_k)
            ]
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()),
                model_name=self.name,
                infer_outputs=outputs,
                use_binary_outputs=payload.use_binary_outputs,
            )
        if isinstance(payload, bytes | str):  # v1 body sent without a JSON content-type
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError as e:
                raise RequestRejected("malformed_json", f"malformed JSON: {e}") from None
        if isinstance(payload, dict):
            return {"predictions": v1_predictions(self.rank(self._v1_query(payload)))}
        raise RequestRejected("bad_input", f"unsupported request type {type(payload).__name__}")

    def _v1_query(self, payload: dict) -> Query:
        """v1: ``{"instances": [["itching", "skin rash"], "fever, cough", ...], "top_k": 3}``."""
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise RequestRejected(
                "bad_input",
                '"instances" must be a non-empty list; each instance a list of symptom names '
                "or one comma-separated string",
            )
        if len(instances) > MAX_PATIENTS:
            raise RequestRejected("bad_shape", f"at most {MAX_PATIENTS} patients per request")
        texts = []
        for inst in instances:
            if isinstance(inst, str):
                texts.append(inst)
            elif isinstance(inst, list) and all(isinstance(s, str) for s in inst):
                texts.append(",".join(inst))
            else:
                raise RequestRejected(
                    "bad_value",
                    "each instance must be a list of symptom names or a comma-separated string",
                )
        params = {"top_k": payload["top_k"]} if "top_k" in payload else None
        top_k = top_k_from(params, self.n_classes)
        return Query(positions_from_names(texts), None, top_k, "names")

    # -- v2 REST JSON fast path ---------------------------------------------------------------
    def reject_too_large(self, limit: int) -> tuple[int, bytes]:
        """413 for a body over ``limit`` bytes (counted as a rejection like any bad request)."""
        e = RequestRejected("body_too_large", f"request body larger than {limit} bytes")
        reject(self.name, e)
        return 413, orjson.dumps({"error": str(e)})

    def infer_json(self, body: bytes) -> tuple[int, bytes]:
        """A v2 REST JSON request body -> (HTTP status, JSON response body)."""
        t0 = time.perf_counter()
        try:
            request = _parse_v2_json(body)
            query = decode_inputs(request["inputs"], request["parameters"], self.n_classes)
            t1 = time.perf_counter()
            results = self.rank(query)
            t2 = time.perf_counter()
            response = orjson.dumps(
                {
                    "model_name": self.name,
                    "model_version": None,
                    "id": request["id"] or str(uuid.uuid4()),
                    "parameters": None,
                    "outputs": output_tensors(results, query.top_k),
                }
            )
        except RequestRejected as e:
            reject(self.name, e)
            return 400, orjson.dumps({"error": str(e)})
        except Exception:
            logger.exception("internal error while answering an infer request")
            return 500, b'{"error":"internal server error"}'
        t3 = time.perf_counter()
        self._pre_hist.observe(t1 - t0)
        self._predict_hist.observe(t2 - t1)
        self._post_hist.observe(t3 - t2)
        return 200, response


def reject(model_name: str, error: Exception) -> None:
    """Count a rejected request and log its reason (never its symptoms)."""
    reason = getattr(error, "reason_code", "bad_input")
    metrics.rejected(model_name, reason)
    logger.info("rejected a request to %s: %s", model_name, reason)


def _tensor_data(infer_input: InferInput) -> Any:
    """Tensor elements from KServe's InferInput (JSON/gRPC contents or raw binary)."""
    if infer_input._raw_data is not None:  # binary tensor extension / gRPC raw contents
        try:
            return infer_input.as_numpy().reshape(-1).tolist()
        except Exception:
            raise RequestRejected(
                "bad_shape", f"input '{infer_input.name}' raw data does not match its shape"
            ) from None
    data = infer_input.data
    return data.reshape(-1).tolist() if isinstance(data, np.ndarray) else data


def _parse_v2_json(body: bytes) -> dict:
    """Validate the envelope of a v2 JSON infer request (the tensors are checked later)."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestRejected("malformed_json", f"malformed JSON: {e}") from None
    if not isinstance(request, dict):
        raise RequestRejected("malformed_json", "the request body must be a JSON object")
    inputs = request.get("inputs")
    if not isinstance(inputs, list):
        raise RequestRejected("bad_input", '"inputs" must be a list of tensors')
    tensors = []
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise RequestRejected("bad_input", f"inputs[{i}] must be an object")
        name, datatype, shape = t.get("name"), t.get("datatype"), t.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise RequestRejected("bad_input", f"inputs[{i}] needs a string name and datatype")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise RequestRejected(
                "bad_shape", f"input '{name}' shape must be a list of non-negative integers"
            )
        if "data" not in t:
            raise RequestRejected("bad_input", f"input '{name}' has no data")
        tensors.append((name, datatype.upper(), shape, t["data"]))
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestRejected("bad_input", '"parameters" must be an object')
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestRejected("bad_input", '"id" must be a string')
    return {"inputs": tensors, "parameters": parameters, "id": request_id}
