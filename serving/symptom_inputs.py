"""Symptom inputs read as symptom positions per patient: the ``symptoms`` (and ``absent``)
elements, a comma-separated list of known names as such and anything else as free text
(``symptom_dx.free_text``), within what one request may spend on approximate matching; or
the 0/1 vector in vocabulary order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.protocol import (
    NeedsWorker,
    RequestRejected,
    Tensor,
    check_shape,
    flat_data,
    patient_prefix,
    shown,
)
from symptom_dx import contract
from symptom_dx.errors import EmptySymptomsError, UnknownSymptomError
from symptom_dx.features import fold_duplicates
from symptom_dx.free_text import HANGUL, parse_symptoms
from symptom_dx.vocabulary import (
    FuzzyBudget,
    TooManyInexactNames,
    Vocabulary,
    split_symptom_list,
    vocabulary,
)

INLINE_FREE_TEXT_CHARS = 512  # of free text a request, the most decoded on the event loop
# Approximate matches of names a request may make on the event loop: each a scan of the ~225
# known spellings (~10 us), far less than handing the request to the worker thread costs.
INLINE_FUZZY_MATCHES = 8


class RequestBudget(FuzzyBudget):
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


class InlineBudget(RequestBudget):
    """Decoding on the event loop: a few approximate matches of names, and no more free text
    than a short English sentence or two (~40 us per 100 characters); Korean text goes to the
    worker (Kiwi). Past it, NeedsWorker: the request is decoded again in the worker, from the
    start, so where it was decoded never changes the answer."""

    def spend(self) -> None:
        if self.spent >= INLINE_FUZZY_MATCHES:
            raise NeedsWorker()
        super().spend()

    def spend_free_text(self, text: str) -> None:
        super().spend_free_text(text)
        if self.free_text_chars > INLINE_FREE_TEXT_CHARS or HANGUL.search(text):
            raise NeedsWorker()


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


def read_symptoms(texts: Sequence[str], budget: RequestBudget) -> _Read:
    """``symptoms`` elements -> positions per patient: a list of known names as such, anything
    else as free text (``symptom_dx.free_text``), which must name a symptom the patient has."""
    return _read(texts, budget, allow_empty=False, free_text=True)


def _read(texts: Sequence[str], budget: FuzzyBudget, allow_empty: bool, free_text: bool) -> _Read:
    vocab = vocabulary()
    lists = [split_symptom_list(t) for t in texts]
    # most elements are lists of names as the vocabulary writes them: no matching to do
    verbatim = [vocab.resolve_verbatim(names) for names in lists]
    read = _Read([], [], [])
    n = len(lists)
    try:
        vocab.check_budget(
            [x for x, ids in zip(lists, verbatim, strict=True) if ids is None], budget
        )
        for i, names in enumerate(lists):
            ids, denied, spans = verbatim[i], [], []
            if ids is None:
                try:
                    ids, denied, spans = _read_one(vocab, texts[i], names, budget, free_text)
                except (UnknownSymptomError, NamesNoSymptom) as e:
                    reason = getattr(e, "reason", "unknown_symptom")
                    raise RequestRejected(reason, f"{patient_prefix(i, n)}{e}") from None
                except EmptySymptomsError as e:
                    if not allow_empty:
                        message = f"{patient_prefix(i, n)}{e}"
                        raise RequestRejected("empty_symptoms", message) from None
                    ids = []
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


def _free_text(text: str, budget: RequestBudget) -> tuple[list, list, list]:
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
        raise NamesNoSymptom(f"no symptom understood in '{shown(text)}'")
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
        X = _numbers(flat_data(t), size)
    if X is None:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' data does not fill shape {shape} with numbers"
        )
    X = X.reshape(shape)
    if not ((X == 0) | (X == 1)).all():
        raise RequestRejected("bad_value", f"input '{t.name}' must hold only 0 and 1")
    given = fold_duplicates(X) != 0
    counts = np.count_nonzero(given, axis=1)
    if not counts.all():
        i = int(np.argmin(counts))
        raise RequestRejected(
            "empty_symptoms", f"{patient_prefix(i, len(X))}no symptoms given: the row is all zeros"
        )
    # each row's positions in vocabulary order, from one scan of the whole matrix (of bools:
    # 2-D nonzero over the numbers took 7x as long)
    positions = (np.flatnonzero(given) % given.shape[1]).tolist()
    ends = np.cumsum(counts).tolist()
    return [positions[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def _numbers(data: Any, size: int) -> np.ndarray | None:
    """``data`` (flat, or rows of equal length) as float64, None if it is not ``size``
    numbers."""
    try:
        if isinstance(data, list) and len(data) == size:  # flat, as clients mostly send it
            return np.fromiter(data, dtype=np.float64, count=size)  # as asarray does, faster
        X = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return X if X.size == size else None
