"""A small client of the model server's KServe v2 REST endpoint.

One request per call, one patient per request; names, tensors and limits come from
``symptom_dx.contract``. Connection errors, time-outs and 5xx answers become
``ModelServerUnavailable`` (the page says the server is down); a 400 becomes
``ModelServerRejected`` carrying the server's own message. Symptom payloads are never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from symptom_dx import contract
from symptom_dx.free_text import ParsedSymptoms
from ui.metrics import BACKEND_CALLS, BACKEND_ERRORS

T = TypeVar("T")


class ModelServerUnavailable(RuntimeError):
    """The model server did not answer in time, refused the connection or failed (5xx)."""


class ModelServerRejected(ValueError):
    """The model server answered 400: the message is the server's ``error`` text."""


@dataclass(frozen=True)
class Candidate:
    """One ranked disease: canonical name, probability and the symptom comparison."""

    disease: str
    probability: float
    supporting: tuple[str, ...]  # given symptoms typical of the disease
    missing: tuple[str, ...]  # its typical symptoms not given, most typical first


@dataclass(frozen=True)
class Prediction:
    candidates: tuple[Candidate, ...]
    next_question: str | None  # a canonical symptom id, or None when nothing is left to ask
    # the symptoms fit no disease pattern the model knows ("none of these fits")
    out_of_pattern: bool = False


class ModelClient:
    """``ModelClient("http://127.0.0.1:8080").infer(["itching", "skin_rash"])``."""

    def __init__(
        self,
        base_url: str,
        model_name: str = contract.MODEL_NAME,
        timeout: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------
    def ready(self) -> bool:
        """True when the model answers ready; False when it is down or not loaded."""
        try:
            self._call("ready", "GET", f"/v2/models/{self.model_name}/ready")
        except (ModelServerUnavailable, ModelServerRejected):
            return False
        return True

    def infer(
        self,
        symptoms: Sequence[str],
        absent: Sequence[str] = (),
        top_k: int = contract.DEFAULT_TOP_K,
    ) -> Prediction:
        """Rank diseases for one person's symptoms (canonical ids) and denied symptoms."""
        body = contract.infer_request([symptoms], [absent] if absent else None, int(top_k))
        answer = self._call("infer", "POST", f"/v2/models/{self.model_name}/infer", json=body)
        return _read(answer, _parse_prediction)

    def parse(self, text: str) -> ParsedSymptoms:
        """What one person's free text says (the server's parser model, ``symptom-parser``):
        symptoms present and denied (canonical ids) and the spans not understood."""
        body = contract.parse_request([text])
        path = f"/v2/models/{contract.PARSER_MODEL_NAME}/infer"
        return _read(self._call("parse", "POST", path, json=body), _parse_reading)

    def _call(self, call: str, method: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            _record(call, "timeout", started)
            raise ModelServerUnavailable(
                f"the model server did not answer within {self._timeout():g} s"
            ) from e
        except httpx.TransportError as e:
            _record(call, "unavailable", started)
            raise ModelServerUnavailable(
                f"cannot reach the model server at {self.base_url} ({type(e).__name__})"
            ) from e
        status = response.status_code
        # 404: the server is up but the model is not (yet) loaded under that name.
        if status >= 500 or status == 404:
            _record(call, "unavailable", started)
            raise ModelServerUnavailable(f"the model server answered HTTP {status} to {call}")
        if status >= 400:
            _record(call, "rejected", started)
            raise ModelServerRejected(_error_text(response))
        _record(call, "ok", started)
        try:
            return response.json()
        except ValueError:
            return None

    def _timeout(self) -> float:
        t = self._http.timeout
        return max(x for x in (t.connect, t.read, t.write, t.pool) if x is not None)


def _record(call: str, outcome: str, started: float) -> None:
    BACKEND_CALLS.labels(call, outcome).observe(time.perf_counter() - started)
    if outcome != "ok":
        BACKEND_ERRORS.labels(outcome).inc()


def _rows(output: dict[str, Any]) -> list[Any]:
    """The first patient's row of a v2 output tensor (data is flat, row-major)."""
    shape = output.get("shape") or [len(output["data"])]
    data = output["data"]
    width = int(shape[1]) if len(shape) > 1 else len(data)
    return list(data[:width])


def _read(answer: Any, parse: Callable[[Any], T]) -> T:
    """``parse(answer)``; an answer that is not the contract's is counted and raised as
    ``ModelServerUnavailable``."""
    try:
        return parse(answer)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        BACKEND_ERRORS.labels("invalid").inc()
        raise ModelServerUnavailable(f"the model server sent an unreadable answer ({e})") from e


def _parse_reading(answer: dict[str, Any]) -> ParsedSymptoms:
    outputs = {o["name"]: o["data"][0] for o in answer["outputs"]}
    spans = str(outputs[contract.NOT_UNDERSTOOD.name]).split(contract.NOT_UNDERSTOOD_SEPARATOR)
    return ParsedSymptoms(
        present=contract.split_list(outputs[contract.UNDERSTOOD.name]),
        absent=contract.split_list(outputs[contract.DENIED.name]),
        not_understood=tuple(span for span in spans if span),
    )


def _parse_prediction(answer: dict[str, Any]) -> Prediction:
    outputs = {o["name"]: o for o in answer["outputs"]}
    diseases = [str(d) for d in _rows(outputs[contract.DISEASE.name])]
    probabilities = [float(p) for p in _rows(outputs[contract.PROBABILITY.name])]
    supporting = _rows(outputs[contract.SUPPORTING.name])
    missing = _rows(outputs[contract.MISSING.name])
    if not len(diseases) == len(probabilities) == len(supporting) == len(missing):
        raise ValueError("output tensors have different widths")
    question = outputs.get(contract.NEXT_QUESTION.name, {}).get("data") or [""]
    flagged = outputs.get(contract.OUT_OF_PATTERN.name, {}).get("data") or [False]
    return Prediction(
        candidates=tuple(
            Candidate(d, p, contract.split_list(s), contract.split_list(m))
            for d, p, s, m in zip(diseases, probabilities, supporting, missing, strict=True)
        ),
        next_question=str(question[0]) or None,
        out_of_pattern=bool(flagged[0]),
    )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return str(body)
