"""Tensors in, tensors out: the v2 contract (``symptom_dx.contract``) applied to requests.

Decoding turns the tensors of a request into a ``Query`` (symptom positions per patient) and
every bad request into a ``RequestRejected`` (a ``kserve.errors.InvalidInput``, so a 400 /
INVALID_ARGUMENT) that says what was wrong and carries a reason code for the rejection
counter. Encoding turns ranked differentials into the contract's output tensors. Everything
about symptoms goes through ``symptom_dx``; nothing here is specific to REST, gRPC or JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from kserve.errors import InvalidInput

from symptom_dx import contract
from symptom_dx.errors import EmptySymptomsError, UnknownSymptomError
from symptom_dx.features import fold_duplicates
from symptom_dx.free_text import HANGUL, parse_symptoms
from symptom_dx.model import Differential, RankedColumns
from symptom_dx.vocabulary import (
    FuzzyBudget,
    TooManyInexactNames,
    Vocabulary,
    split_symptom_list,
    vocabulary,
)

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
_DIGITS = re.compile(r"[0-9]{1,4}")
_SHOWN_CHARS = 40  # of a bad value echoed in a message


class NeedsFuzzyMatching(Exception):
    """Decoding ``exact_only`` met a name that is not an exact spelling: matching it
    approximately costs a scan of every known spelling, so the caller decodes again off the
    event loop."""


class _RequestBudget(FuzzyBudget):
    """What one request may spend on approximate matching: names (``FuzzyBudget``) and
    characters of free text."""

    def __init__(self) -> None:
        super().__init__(contract.MAX_INEXACT_NAMES)
        self.free_text_chars = 0

    def spend_free_text(self, text: str) -> None:
        self.free_text_chars += len(text)
        if self.free_text_chars > contract.MAX_FREE_TEXT_CHARS:
            raise RequestRejected(
                "too_much_free_text",
                f"more than {contract.MAX_FREE_TEXT_CHARS} characters of this request are free "
                "text, not symptom names: send fewer patients per request, or symptom ids",
            )


class _ExactOnly(_RequestBudget):
    """Decoding on the event loop: no approximate matching of names, and no more free text
    than a short English sentence or two (~40 us per 100 characters); Korean text goes to the
    worker (Kiwi)."""

    def spend(self) -> None:
        raise NeedsFuzzyMatching()

    def spend_free_text(self, text: str) -> None:
        super().spend_free_text(text)
        if self.free_text_chars > INLINE_FREE_TEXT_CHARS or HANGUL.search(text):
            raise NeedsFuzzyMatching()


INLINE_FREE_TEXT_CHARS = 512


class RequestRejected(InvalidInput):
    """A bad request: ``reason_code`` is one of ``REASONS``, the message is for the caller."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason_code = reason


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


# -- metadata ----------------------------------------------------------------------------------
def input_types() -> list[dict]:
    return [t.metadata() for t in contract.INPUTS]


def output_types() -> list[dict]:
    return [t.metadata() for t in contract.OUTPUTS]


# -- decoding ----------------------------------------------------------------------------------
def top_k_from(parameters: Mapping[str, Any] | None, limit: int) -> int:
    """``top_k`` from request parameters (REST values or gRPC InferParameter), 1..limit."""
    if not parameters or contract.TOP_K not in parameters:
        return contract.DEFAULT_TOP_K
    value = parameters[contract.TOP_K]
    if hasattr(value, "WhichOneof"):  # gRPC InferParameter
        field = value.WhichOneof("parameter_choice")
        value = getattr(value, field) if field else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise RequestRejected(
            "bad_top_k",
            f"parameter {contract.TOP_K} must be an integer from {contract.MIN_TOP_K} to "
            f"{limit}, got {_shown(repr(value))}",
        )
    return value


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


def _flat(t: Tensor) -> list:
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


def texts_of(t: Tensor) -> list[str]:
    """A BYTES [N] (or [N, 1]) tensor's elements as str."""
    if t.datatype != contract.BYTES:
        raise RequestRejected(
            "bad_datatype", f"input '{t.name}' must have datatype BYTES, got {_shown(t.datatype)}"
        )
    shape = check_shape(t)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' must have shape [N] with N >= 1, got {shape}"
        )
    values = _flat(t)
    if len(values) != shape[0]:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' has shape {shape} but {len(values)} elements"
        )
    out = []
    for v in values:
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestRejected("bad_value", f"input '{t.name}' is not UTF-8") from None
        if not isinstance(v, str):
            raise RequestRejected(
                "bad_value", f"input '{t.name}' elements must be strings, got {type(v).__name__}"
            )
        if len(v) > contract.MAX_ELEMENT_CHARS:
            raise RequestRejected(
                "bad_value",
                f"input '{t.name}' element longer than {contract.MAX_ELEMENT_CHARS} characters",
            )
        out.append(v)
    return out


def _prefix(i: int, n: int) -> str:
    return f"patient {i}: " if n > 1 else ""


@dataclass
class _Read:
    """What the ``symptoms`` elements of a request say, per patient."""

    present: list[list[int]]
    denied: list[list[int]]
    not_understood: list[list[str]]


def positions_from_names(
    texts: Sequence[str], budget: FuzzyBudget, allow_empty: bool = False
) -> list[list[int]]:
    """Comma-separated symptom lists -> symptom positions per patient, via the vocabulary."""
    return _read(texts, budget, allow_empty, free_text=False).present


def read_symptoms(texts: Sequence[str], budget: _RequestBudget) -> _Read:
    """``symptoms`` elements -> positions per patient: a list of known names as such, anything
    else as free text (``symptom_dx.free_text``), which must name a symptom the patient has."""
    return _read(texts, budget, allow_empty=False, free_text=True)


def _read(texts: Sequence[str], budget: FuzzyBudget, allow_empty: bool, free_text: bool) -> _Read:
    vocab = vocabulary()
    lists = [split_symptom_list(t) for t in texts]
    read = _Read([], [], [])
    n = len(lists)
    try:
        vocab.check_budget(lists, budget)
        for i, names in enumerate(lists):
            try:
                ids, denied, spans = _read_one(vocab, texts[i], names, budget, free_text)
            except (UnknownSymptomError, NamesNoSymptom) as e:
                reason = getattr(e, "reason", "unknown_symptom")
                raise RequestRejected(reason, f"{_prefix(i, n)}{e}") from None
            except EmptySymptomsError as e:
                if not allow_empty:
                    raise RequestRejected("empty_symptoms", f"{_prefix(i, n)}{e}") from None
                ids, denied, spans = [], [], []
            read.present.append([vocab.position(s) for s in ids])
            read.denied.append([vocab.position(s) for s in denied])
            read.not_understood.append(spans)
    except TooManyInexactNames as e:
        raise RequestRejected("too_many_inexact_names", str(e)) from None
    return read


def _read_one(
    vocab: Vocabulary, text: str, names: list[str], budget: FuzzyBudget, free_text: bool
) -> tuple[list[str], list[str], list[str]]:
    """(present ids, denied ids, spans not understood) of one element: a list of names, else
    (``free_text``) what the text says. A sentence is read as text at once; a list with an
    unknown name is matched name by name first, then as text."""
    if not (free_text and _sentence_like(vocab, names)):
        try:
            return vocab.resolve(names, budget), [], []
        except UnknownSymptomError:
            if not free_text:
                raise
    try:
        return _free_text(text, budget)
    except DeniesOnly:
        raise
    except NamesNoSymptom:  # name the unknown names, with close known ones, if names they are
        return vocab.resolve(names, budget), [], []


class NamesNoSymptom(ValueError):
    """Free text that names no symptom the patient has."""

    reason = "unknown_symptom"


class DeniesOnly(NamesNoSymptom):
    reason = "empty_symptoms"


# A part of a list with this many words that is not a known name is read as a sentence at once
# (no approximate matching of it as one name first: names have at most a few words).
SENTENCE_WORDS = 3


def _sentence_like(vocab: Vocabulary, names: Sequence[str]) -> bool:
    return any(len(n.split()) >= SENTENCE_WORDS and vocab.exact(n) is None for n in names)


def _free_text(text: str, budget: _RequestBudget) -> tuple[list, list, list]:
    """(present ids, denied ids, spans not understood) of a text that is not a list of names;
    NamesNoSymptom if it names no symptom the patient has."""
    budget.spend_free_text(text)
    parsed = parse_symptoms(text)
    if not parsed.present:
        if parsed.absent:
            raise DeniesOnly(
                f"no symptom you have in this text, only ones you do not have "
                f"({', '.join(parsed.absent)}): name at least one symptom you have"
            )
        raise NamesNoSymptom(f"no symptom understood in '{_shown(text)}'")
    return list(parsed.present), list(parsed.absent), list(parsed.not_understood)


def positions_from_vector(t: Tensor) -> list[list[int]]:
    """A 0/1 [N, 132] tensor in vocabulary order -> symptom positions per patient."""
    shape = check_shape(t)
    if len(shape) != 2 or shape[1] != contract.N_SYMPTOMS or shape[0] < 1:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' must have shape [N, {contract.N_SYMPTOMS}], got {shape}"
        )
    size = shape[0] * shape[1]
    X = _numbers(t.data, size)
    if X is None:  # rows and single numbers mixed, or not numbers at all
        X = _numbers(_flat(t), size)
    if X is None:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' data does not fill shape {shape} with numbers"
        )
    X = X.reshape(shape)
    if not ((X == 0) | (X == 1)).all():
        raise RequestRejected("bad_value", f"input '{t.name}' must hold only 0 and 1")
    X = fold_duplicates(X)
    counts = np.count_nonzero(X, axis=1)
    if not counts.all():
        i = int(np.argmin(counts))
        raise RequestRejected(
            "empty_symptoms", f"{_prefix(i, len(X))}no symptoms given: the row is all zeros"
        )
    # each row's positions in vocabulary order, from one nonzero over the whole matrix
    positions = np.nonzero(X)[1].tolist()
    ends = np.cumsum(counts).tolist()
    return [positions[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def _numbers(data: Any, size: int) -> np.ndarray | None:
    """``data`` (flat, or rows of equal length) as float64, None if it is not ``size``
    numbers."""
    try:
        X = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return X if X.size == size else None


def decode_inputs(
    inputs: Sequence[Tensor], parameters: Any, n_classes: int, exact_only: bool = False
) -> Query:
    """The input tensors and parameters of one request -> Query (or RequestRejected).

    ``exact_only``: raise NeedsFuzzyMatching instead of matching any name approximately.
    """
    names, vector = contract.SYMPTOMS.name, contract.N_SYMPTOMS
    if not inputs:
        raise RequestRejected(
            "bad_input",
            f"no inputs: send '{names}' (BYTES [N], comma-separated symptom names) "
            f"or one [N, {vector}] 0/1 vector input",
        )
    if parameters is not None and not isinstance(parameters, Mapping):
        raise RequestRejected("bad_input", '"parameters" must be an object')
    by_name: dict[str, Tensor] = {}
    for t in inputs:
        if t.name in by_name:
            raise RequestRejected("bad_input", f"input '{_shown(t.name)}' given twice")
        by_name[t.name] = t
    top_k = top_k_from(parameters, n_classes)
    budget = _ExactOnly() if exact_only else _RequestBudget()
    symptoms = by_name.pop(names, None)
    absent_t = by_name.pop(contract.ABSENT.name, None)
    if symptoms is not None:
        if by_name:
            raise RequestRejected(
                "bad_input", f"unexpected input(s) beside '{names}': {_shown(sorted(by_name))}"
            )
        read = read_symptoms(texts_of(symptoms), budget)
        present, form = read.present, "names"
    else:
        if len(by_name) != 1:
            raise RequestRejected(
                "bad_input",
                f"expected input '{names}' or exactly one [N, {vector}] vector input, "
                f"got {_shown(sorted(by_name)) or 'none'}",
            )
        (t,) = by_name.values()
        if t.datatype not in contract.VECTOR_DATATYPES:
            raise RequestRejected(
                "bad_datatype",
                f"vector input '{_shown(t.name)}' must be numeric or BOOL (e.g. FP32), "
                f"got {_shown(t.datatype)}",
            )
        present = positions_from_vector(t)
        form = "vector"
        read = None
    absent = None
    if absent_t is not None:
        texts = texts_of(absent_t)
        if len(texts) != len(present):
            raise RequestRejected(
                "bad_shape",
                f"input '{absent_t.name}' has {len(texts)} elements for {len(present)} patients",
            )
        absent = positions_from_names(texts, budget, allow_empty=True)
    if read is not None and any(read.denied):  # what the text denies, with the absent input
        absent = [
            sorted({*a, *d})
            for a, d in zip(absent or [[]] * len(present), read.denied, strict=True)
        ]
    if absent is not None:
        ids = vocabulary().ids
        for i, (yes, no) in enumerate(zip(present, absent, strict=True)):
            if both := sorted(set(yes) & set(no)):
                raise RequestRejected(
                    "bad_input",
                    f"{_prefix(i, len(present))}symptom(s) both present and absent: "
                    + ", ".join(ids[j] for j in both),
                )
    not_understood = read.not_understood if read is not None and any(read.not_understood) else None
    return Query(present, absent, top_k, form, not_understood)


def parse_v2_json(body: bytes) -> tuple[list[Tensor], Any, str | None]:
    """A v2 JSON infer request body -> (input tensors, parameters, id); the tensors themselves
    are checked by ``decode_inputs``."""
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
        name, datatype = t.get("name"), t.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise RequestRejected("bad_input", f"inputs[{i}] needs a string name and datatype")
        if "data" not in t:
            raise RequestRejected("bad_input", f"input '{_shown(name)}' has no data")
        tensors.append(Tensor(name, datatype.upper(), t.get("shape"), t["data"]))
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestRejected("bad_input", '"id" must be a string')
    return tensors, request.get("parameters"), request_id


def v1_query(payload: Any, n_classes: int) -> Query:
    """v1: ``{"instances": [["itching", "skin rash"], "fever, cough", ...], "top_k": 3}``."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise RequestRejected(
            "bad_input",
            '"instances" must be a non-empty list; each instance a list of symptom names '
            "or one comma-separated string",
        )
    if len(instances) > contract.MAX_PATIENTS:
        raise RequestRejected("bad_shape", f"at most {contract.MAX_PATIENTS} patients per request")
    texts = []
    for inst in instances:
        if isinstance(inst, list) and all(isinstance(s, str) for s in inst):
            inst = contract.LIST_SEPARATOR.join(inst)
        if not isinstance(inst, str):
            raise RequestRejected(
                "bad_value",
                "each instance must be a list of symptom names or a comma-separated string",
            )
        texts.append(inst)
    tensor = Tensor(contract.SYMPTOMS.name, contract.BYTES, [len(texts)], texts)
    params = {contract.TOP_K: payload[contract.TOP_K]} if contract.TOP_K in payload else None
    return decode_inputs([tensor], params, n_classes)


def _shown(value: Any) -> str:
    """A client's value, cut short, for an error message."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


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
