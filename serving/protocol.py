"""The v2 contract of the disease-classifier predictor: names, shapes, decoding, encoding.

Everything about symptoms goes through ``symptom_dx``: this module only moves tensors in and
out of the shapes the contract promises, and turns every bad request into a
``RequestRejected`` (a ``kserve.errors.InvalidInput``, so a 400 / INVALID_ARGUMENT) that says
what was wrong and carries a short reason code for the rejection counter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.errors import InvalidInput

from symptom_dx.errors import EmptySymptomsError, UnknownSymptomError
from symptom_dx.features import decode, fold_duplicates
from symptom_dx.model import Differential
from symptom_dx.settings import MODEL_NAME  # noqa: F401 - re-exported for serving
from symptom_dx.vocabulary import vocabulary

INPUT_SYMPTOMS = "symptoms"
INPUT_ABSENT = "absent"
# What clients of KServe's stock sklearn runtime send; any other name works too.
STOCK_VECTOR_INPUT = "input-0"
DEFAULT_TOP_K = 5
MAX_PATIENTS = 1024
# One patient's comma-separated list: all 132 symptoms by their longest names fit in ~5 KB.
MAX_ELEMENT_CHARS = 8192
VECTOR_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
     "UINT64", "BOOL"}
)  # fmt: skip
OUTPUTS = ("disease", "probability", "supporting_symptoms", "missing_symptoms", "next_question")

# Reason codes of rejected requests (label values of the rejection counter).
REASONS = (
    "unknown_symptom",
    "empty_symptoms",
    "bad_datatype",
    "bad_shape",
    "bad_value",
    "bad_top_k",
    "bad_input",
    "malformed_json",
    "body_too_large",
)


class RequestRejected(InvalidInput):
    """A bad request: ``reason`` is one of ``REASONS``, the message is for the caller."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason_code = reason


@dataclass
class Query:
    """A decoded request: symptom positions per patient (present and denied) and top_k."""

    present: list[list[int]]
    absent: list[list[int]] | None
    top_k: int
    form: str  # "names" or "vector"


# -- metadata ----------------------------------------------------------------------------------
def input_types() -> list[dict]:
    n = vocabulary().size
    return [
        {"name": INPUT_SYMPTOMS, "datatype": "BYTES", "shape": [-1]},
        {"name": INPUT_ABSENT, "datatype": "BYTES", "shape": [-1]},
        {"name": STOCK_VECTOR_INPUT, "datatype": "FP32", "shape": [-1, n]},
    ]


def output_types() -> list[dict]:
    return [
        {"name": "disease", "datatype": "BYTES", "shape": [-1, -1]},
        {"name": "probability", "datatype": "FP32", "shape": [-1, -1]},
        {"name": "supporting_symptoms", "datatype": "BYTES", "shape": [-1, -1]},
        {"name": "missing_symptoms", "datatype": "BYTES", "shape": [-1, -1]},
        {"name": "next_question", "datatype": "BYTES", "shape": [-1]},
    ]


# -- decoding ----------------------------------------------------------------------------------
def top_k_from(parameters: Mapping[str, Any] | None, limit: int) -> int:
    """``top_k`` from v2 request parameters (REST dict values or gRPC InferParameter); it
    must lie in 1..limit (the served model's number of diseases)."""
    if not parameters or "top_k" not in parameters:
        return DEFAULT_TOP_K
    value = parameters["top_k"]
    if hasattr(value, "WhichOneof"):  # gRPC InferParameter
        field = value.WhichOneof("parameter_choice")
        value = getattr(value, field) if field else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise RequestRejected(
            "bad_top_k", f"parameter top_k must be an integer from 1 to {limit}, got {value!r}"
        )
    return value


def _texts(name: str, datatype: str, shape: Sequence[int], data: Any) -> list[str]:
    """A BYTES [N] (or [N, 1]) tensor's elements as str."""
    if datatype != "BYTES":
        raise RequestRejected(
            "bad_datatype", f"input '{name}' must have datatype BYTES, got {datatype}"
        )
    shape = list(shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise RequestRejected(
            "bad_shape", f"input '{name}' must have shape [N] with N >= 1, got {shape}"
        )
    values = list(data) if data is not None else []
    if values and isinstance(values[0], list):  # nested [[...], ...] JSON
        values = [v for row in values for v in (row if isinstance(row, list) else [row])]
    if len(values) != shape[0]:
        raise RequestRejected(
            "bad_shape", f"input '{name}' has shape {shape} but {len(values)} elements"
        )
    out = []
    for v in values:
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestRejected("bad_value", f"input '{name}' is not UTF-8") from None
        if not isinstance(v, str):
            raise RequestRejected(
                "bad_value", f"input '{name}' elements must be strings, got {type(v).__name__}"
            )
        if len(v) > MAX_ELEMENT_CHARS:
            raise RequestRejected(
                "bad_value", f"input '{name}' element longer than {MAX_ELEMENT_CHARS} characters"
            )
        out.append(v)
    return out


def _prefix(i: int, n: int) -> str:
    return f"patient {i}: " if n > 1 else ""


def positions_from_names(texts: Sequence[str], allow_empty: bool = False) -> list[list[int]]:
    """Comma-separated symptom lists -> symptom positions per patient, via the vocabulary."""
    vocab = vocabulary()
    out: list[list[int]] = []
    n = len(texts)
    for i, text in enumerate(texts):
        try:
            ids = vocab.parse(text)
        except UnknownSymptomError as e:
            raise RequestRejected("unknown_symptom", f"{_prefix(i, n)}{e}") from None
        except EmptySymptomsError as e:
            if allow_empty:
                out.append([])
                continue
            raise RequestRejected("empty_symptoms", f"{_prefix(i, n)}{e}") from None
        out.append([vocab.position(s) for s in ids])
    return out


def positions_from_vector(name: str, datatype: str, shape: Sequence[int], data: Any) -> list:
    """A 0/1 [N, 132] tensor in vocabulary order -> symptom positions per patient."""
    width = vocabulary().size
    shape = list(shape)
    if len(shape) != 2 or shape[1] != width or shape[0] < 1:
        raise RequestRejected(
            "bad_shape", f"input '{name}' must have shape [N, {width}], got {shape}"
        )
    try:
        X = data if isinstance(data, np.ndarray) else np.asarray(data, dtype=np.float64)
        X = X.astype(np.float64, copy=False).reshape(shape)
    except (ValueError, TypeError):
        raise RequestRejected(
            "bad_shape", f"input '{name}' data does not fill shape {shape} with numbers"
        ) from None
    if not np.isin(X, (0, 1)).all():
        raise RequestRejected("bad_value", f"input '{name}' must hold only 0 and 1")
    X = fold_duplicates(X)
    out = []
    for i, row in enumerate(X):
        ids = decode(row)
        if not ids:
            raise RequestRejected(
                "empty_symptoms", f"{_prefix(i, len(X))}no symptoms given: the row is all zeros"
            )
        out.append([vocabulary().position(s) for s in ids])
    return out


def decode_inputs(
    inputs: Sequence[tuple[str, str, Sequence[int], Any]], parameters: Any, n_classes: int
) -> Query:
    """(name, datatype, shape, data) per input tensor, plus request parameters -> Query."""
    if not inputs:
        raise RequestRejected(
            "bad_input",
            f"no inputs: send '{INPUT_SYMPTOMS}' (BYTES [N], comma-separated symptom names) "
            f"or one [N, {vocabulary().size}] 0/1 vector input",
        )
    by_name: dict[str, tuple] = {}
    for t in inputs:
        if t[0] in by_name:
            raise RequestRejected("bad_input", f"input '{t[0]}' given twice")
        by_name[t[0]] = t
    top_k = top_k_from(parameters, n_classes)
    symptoms = by_name.pop(INPUT_SYMPTOMS, None)
    absent_t = by_name.pop(INPUT_ABSENT, None)
    if symptoms is not None:
        if by_name:
            raise RequestRejected(
                "bad_input", f"unexpected input(s) beside '{INPUT_SYMPTOMS}': {sorted(by_name)}"
            )
        texts = _texts(*symptoms)
        if len(texts) > MAX_PATIENTS:
            raise RequestRejected("bad_shape", f"at most {MAX_PATIENTS} patients per request")
        present = positions_from_names(texts)
        form = "names"
    else:
        if len(by_name) != 1:
            raise RequestRejected(
                "bad_input",
                f"expected input '{INPUT_SYMPTOMS}' or exactly one [N, {vocabulary().size}] "
                f"vector input, got {sorted(by_name) or 'none'}",
            )
        name, datatype, shape, data = next(iter(by_name.values()))
        if datatype not in VECTOR_DATATYPES:
            raise RequestRejected(
                "bad_datatype",
                f"vector input '{name}' must be numeric or BOOL (e.g. FP32), got {datatype}",
            )
        if shape and shape[0] > MAX_PATIENTS:
            raise RequestRejected("bad_shape", f"at most {MAX_PATIENTS} patients per request")
        present = positions_from_vector(name, datatype, shape, data)
        form = "vector"
    absent = None
    if absent_t is not None:
        texts = _texts(*absent_t)
        if len(texts) != len(present):
            raise RequestRejected(
                "bad_shape",
                f"input '{INPUT_ABSENT}' has {len(texts)} elements for {len(present)} patients",
            )
        absent = positions_from_names(texts, allow_empty=True)
        ids = vocabulary().ids
        for i, (yes, no) in enumerate(zip(present, absent, strict=True)):
            if both := sorted(set(yes) & set(no)):
                raise RequestRejected(
                    "bad_input",
                    f"{_prefix(i, len(present))}symptom(s) both present and absent: "
                    + ", ".join(ids[j] for j in both),
                )
    return Query(present, absent, top_k, form)


# -- encoding ----------------------------------------------------------------------------------
def output_tensors(results: Sequence[Differential], top_k: int) -> list[dict]:
    """The five v2 output tensors (data flattened row-major), as plain dicts."""
    n = len(results)
    k = len(results[0].diseases) if results else top_k
    diseases: list[str] = []
    probs: list[float] = []
    supporting: list[str] = []
    missing: list[str] = []
    for r in results:
        diseases.extend(r.diseases)
        probs.extend(r.probabilities)
        supporting.extend(",".join(s) for s in r.supporting)
        missing.extend(",".join(m) for m in r.missing)
    return [
        {"name": "disease", "datatype": "BYTES", "shape": [n, k], "data": diseases},
        {
            "name": "probability",
            "datatype": "FP32",
            "shape": [n, k],
            "data": np.asarray(probs, dtype=np.float32).tolist(),
        },
        {"name": "supporting_symptoms", "datatype": "BYTES", "shape": [n, k], "data": supporting},
        {"name": "missing_symptoms", "datatype": "BYTES", "shape": [n, k], "data": missing},
        {
            "name": "next_question",
            "datatype": "BYTES",
            "shape": [n],
            "data": [r.next_question or "" for r in results],
        },
    ]


def v1_predictions(results: Sequence[Differential]) -> list[dict]:
    """The v1 ``predictions`` list: one object per patient."""
    return [
        {
            "diseases": r.diseases,
            "probabilities": [round(p, 6) for p in r.probabilities],
            "supporting_symptoms": r.supporting,
            "missing_symptoms": r.missing,
            "next_question": r.next_question or "",
        }
        for r in results
    ]
