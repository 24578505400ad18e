"""The v2 contract (``symptom_dx.contract``) on the server: what every part of it shares.

``RequestRejected`` (a ``kserve.errors.InvalidInput``, so a 400 / INVALID_ARGUMENT) says what
was wrong with a request and carries a reason code for the rejection counter; ``Query`` is a
decoded request (``serving.decoding`` makes it); encoding turns ranked differentials into the
contract's output tensors. Nothing here is specific to REST, gRPC or JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.errors import InvalidInput

from symptom_dx import contract
from symptom_dx.model import Differential, RankedColumns
from symptom_dx.vocabulary import vocabulary

# Reason codes of rejected requests: the label values of the rejection counter.
REASONS = (
    "unknown_symptom",
    "empty_symptoms",
    "too_many_inexact_names",
    "bad_datatype",
    "bad_shape",
    "bad_value",
    "bad_top_k",
    "bad_input",
    "malformed_json",
    "body_too_large",
    "too_much_free_text",
)
_SHOWN_CHARS = 40  # of a bad value echoed in a message


class RequestRejected(InvalidInput):
    """A bad request: ``reason_code`` is one of ``REASONS``, the message is for the caller."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason_code = reason


class NeedsWorker(Exception):
    """Decoding ``inline`` (on the event loop) met more than the loop may spend on it (see
    ``serving.symptom_inputs.InlineBudget``), so the caller decodes again in the worker."""


@dataclass
class Query:
    """A decoded request: symptom positions per patient (present and denied), top_k, and the
    spans of free text not understood per patient (None when no element was free text)."""

    present: list[list[int]]
    absent: list[list[int]] | None
    top_k: int
    form: str  # "names" or "vector"
    not_understood: list[list[str]] | None = None

    @property
    def size(self) -> int:
        """Symptoms in the request (what its ranking and encoding cost grows with)."""
        return sum(map(len, self.present))


@dataclass(frozen=True)
class Tensor:
    """An input tensor as decoding needs it: data flat (row-major) or nested lists."""

    name: str
    datatype: str
    shape: Sequence[int]
    data: Any


def check_shape(t: Tensor) -> list[int]:
    """The shape as a list of non-negative ints, at most MAX_PATIENTS rows."""
    shape = t.shape
    if not isinstance(shape, list | tuple) or not all(
        type(d) is int and d >= 0
        for d in shape  # not bool, not float
    ):
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' shape must be a list of non-negative integers"
        )
    if shape and shape[0] > contract.MAX_PATIENTS:
        raise RequestRejected(
            "bad_shape", f"at most {contract.MAX_PATIENTS} patients per request, got {shape[0]}"
        )
    return list(shape)


def flat_data(t: Tensor) -> list:
    """The tensor's elements, flattened (one level of nesting, as JSON clients send rows)."""
    data = t.data
    if isinstance(data, np.ndarray):
        return data.reshape(-1).tolist()
    if not isinstance(data, list | tuple):
        raise RequestRejected("bad_value", f"input '{t.name}' data must be a list")
    for v in data:
        if isinstance(v, list | tuple):
            return [v for row in data for v in (row if isinstance(row, list | tuple) else [row])]
    return list(data)


def shown(value: Any) -> str:
    """A client's value, cut short, for an error message."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def patient_prefix(i: int, n: int) -> str:
    """How an error message names the patient it is about (nothing for a single patient)."""
    return f"patient {i}: " if n > 1 else ""


# -- metadata ----------------------------------------------------------------------------------
def input_types() -> list[dict]:
    return [t.metadata() for t in contract.INPUTS]


def output_types() -> list[dict]:
    return [t.metadata() for t in contract.OUTPUTS]


# -- encoding ----------------------------------------------------------------------------------
def output_tensors(query: Query, ranked: RankedColumns) -> list[dict]:
    """The contract's output tensors (data flat, row-major), as v2 JSON dicts."""
    n, k = len(ranked.next_question), ranked.k
    join = contract.LIST_SEPARATOR.join
    ids = vocabulary().ids
    understood = [join([ids[j] for j in p]) for p in query.present]
    denied = [join([ids[j] for j in a]) for a in query.absent] if query.absent else [""] * n
    spans = query.not_understood
    separator = contract.NOT_UNDERSTOOD_SEPARATOR
    not_understood = [separator.join(s) for s in spans] if spans else [""] * n
    probabilities = ranked.probabilities.astype(np.float32).ravel().tolist()
    return [
        contract.DISEASE.tensor([n, k], ranked.diseases),
        contract.PROBABILITY.tensor([n, k], probabilities),
        contract.SUPPORTING.tensor([n, k], ranked.supporting),
        contract.MISSING.tensor([n, k], ranked.missing),
        contract.NEXT_QUESTION.tensor([n], ranked.next_question),
        contract.UNDERSTOOD.tensor([n], understood),
        contract.DENIED.tensor([n], denied),
        contract.NOT_UNDERSTOOD.tensor([n], not_understood),
        contract.OUT_OF_PATTERN.tensor([n], ranked.out_of_pattern),
    ]


def v1_predictions(results: Sequence[Differential]) -> list[dict]:
    """The v1 ``predictions`` list: one object per patient."""
    return [
        {
            "diseases": r.diseases,
            "probabilities": [round(p, 6) for p in r.probabilities],
            contract.SUPPORTING.name: r.supporting,
            contract.MISSING.name: r.missing,
            contract.NEXT_QUESTION.name: r.next_question or "",
            contract.OUT_OF_PATTERN.name: r.out_of_pattern,
        }
        for r in results
    ]
