"""The v2 (Open Inference Protocol) contract of the disease-classifier predictor, defined once.

The model name, the tensors (names, datatypes, shapes), the request parameter and the limits a
request must stay within. The server's metadata, its decoding and encoding (``serving``) and
the UI's client (``ui.client``) derive everything from here; ``serving/README.md`` documents
it for people.

Shapes use -1 for a dimension of any size, as v2 model metadata does. Symptom lists inside a
BYTES element (the ``symptoms`` input, the ``supporting_symptoms``/``missing_symptoms`` outputs)
are comma-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from symptom_dx.diseases import disease_catalog
from symptom_dx.vocabulary import MAX_FUZZY_CHARS, vocabulary  # noqa: F401 - a limit, below

MODEL_NAME = "disease-classifier"

BYTES = "BYTES"
FP32 = "FP32"
BOOL = "BOOL"
# Datatypes the 0/1 vector input may use (what clients of KServe's stock sklearn runtime send).
VECTOR_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
     "UINT64", "BOOL"}
)  # fmt: skip
LIST_SEPARATOR = ","
N_SYMPTOMS = vocabulary().size  # the vector's width: 132
N_DISEASES = len(disease_catalog().names)  # 41


@dataclass(frozen=True)
class Tensor:
    """One input or output tensor of the contract."""

    name: str
    datatype: str
    shape: tuple[int, ...]  # -1: any size

    def metadata(self) -> dict[str, Any]:
        """As v2 model metadata lists it."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def tensor(self, shape: Sequence[int], data: list) -> dict[str, Any]:
        """A v2 JSON tensor of this name and datatype (``data`` flat, row-major)."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(shape), "data": data}


# -- inputs: names or free text per patient (optionally denied names), or the 0/1 vector ----------
# [N] (or [N, 1]): one comma-separated list of names each, or what the patient says in English
# or Korean ("no fever but a sore throat"; ``symptom_dx.free_text``)
SYMPTOMS = Tensor("symptoms", BYTES, (-1,))
ABSENT = Tensor("absent", BYTES, (-1,))  # [N]: symptoms each patient denies ("" for none)
# The vector in vocabulary order; any input name works, this is the one stock clients send.
VECTOR = Tensor("input-0", FP32, (-1, N_SYMPTOMS))
INPUTS = (SYMPTOMS, ABSENT, VECTOR)

# -- outputs, best candidate first -----------------------------------------------------------------
DISEASE = Tensor("disease", BYTES, (-1, -1))  # [N, K] canonical disease names
PROBABILITY = Tensor("probability", FP32, (-1, -1))  # [N, K]
SUPPORTING = Tensor("supporting_symptoms", BYTES, (-1, -1))  # [N, K] given and typical
MISSING = Tensor("missing_symptoms", BYTES, (-1, -1))  # [N, K] typical, not given
NEXT_QUESTION = Tensor("next_question", BYTES, (-1,))  # [N] symptom id to ask, or ""
# What was read from each patient's input, for a client to show: the symptom ids ranked on, the
# ids the patient said they do not have (text or ``absent``), and the spans of free text that
# map to no symptom (NOT_UNDERSTOOD_SEPARATOR-separated; "" for lists and vectors).
UNDERSTOOD = Tensor("understood", BYTES, (-1,))  # [N]
DENIED = Tensor("denied", BYTES, (-1,))  # [N]
NOT_UNDERSTOOD = Tensor("not_understood", BYTES, (-1,))  # [N]
NOT_UNDERSTOOD_SEPARATOR = "\n"  # a span never holds one: text is split there
# [N] the symptoms fit no disease's training patterns (``SymptomClassifier.out_of_pattern``):
# "none of these fits", whatever the probabilities say
OUT_OF_PATTERN = Tensor("out_of_pattern", BOOL, (-1,))
OUTPUTS = (
    DISEASE, PROBABILITY, SUPPORTING, MISSING, NEXT_QUESTION, UNDERSTOOD, DENIED, NOT_UNDERSTOOD,
    OUT_OF_PATTERN,
)  # fmt: skip

# -- the free-text parser, a model of its own in the same server ---------------------------------
# What a person typed in, what was read from it out (UNDERSTOOD, DENIED, NOT_UNDERSTOOD as above,
# one element each), nothing ranked and no 400 for text that names no symptom: how a client
# without the parser (the UI) reads text, so that one deployment holds one Korean analyser.
PARSER_MODEL_NAME = "symptom-parser"
TEXT = Tensor("text", BYTES, (-1,))  # [N] free text, English or Korean, lists or sentences
PARSER_INPUTS = (TEXT,)
PARSER_OUTPUTS = (UNDERSTOOD, DENIED, NOT_UNDERSTOOD)

# -- request parameter -----------------------------------------------------------------------------
TOP_K = "top_k"  # how many candidates per patient: MIN_TOP_K .. the model's number of diseases
DEFAULT_TOP_K = 5
MIN_TOP_K = 1
MAX_TOP_K = N_DISEASES

# -- limits: within them every request costs bounded CPU and memory --------------------------------
# A request body (REST, any route) or gRPC message. 1024 patients as 132-wide JSON vectors are
# ~0.6 MB; 1024 of the longest symptom lists ~8 MB.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PATIENTS = 1024
# A request's headers: how long they may take to arrive (seconds) and how large they may be.
HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024
# A request's body: how long it may take to arrive once its headers have (seconds); a body that
# does not is answered 408 and its connection closed.
BODY_TIMEOUT_S = 10.0
# An answer the client does not read: how long it may wait in the server's buffer (seconds), and
# how much of it all connections together may leave there; past either, the connection is
# dropped and its memory returned. One connection buffers at most one answer.
WRITE_TIMEOUT_S = 10.0
MAX_BUFFERED_OUTPUT_BYTES = 64 * 1024 * 1024
# One patient's list: all 132 symptoms by their longest names fit in ~5 KB.
MAX_ELEMENT_CHARS = 8192
# Names of one request that are not an exact spelling (case, spaces and punctuation aside) and so
# are matched approximately, each a scan of every known spelling. Past this the request is
# refused naming the limit. Names longer than MAX_FUZZY_CHARS are never matched approximately.
MAX_INEXACT_NAMES = 128
# Characters of one request's elements read as free text (lists of names that are not all
# known names): each costs ~40 us to parse in English, ~120 us in Korean.
MAX_FREE_TEXT_CHARS = 16384


def infer_request(
    patients: Sequence[Sequence[str]],
    absent: Sequence[Sequence[str]] | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """A v2 JSON infer request: symptom names (and denied ones) per patient."""
    inputs = [SYMPTOMS.tensor([len(patients)], [LIST_SEPARATOR.join(p) for p in patients])]
    if absent is not None:
        inputs.append(ABSENT.tensor([len(absent)], [LIST_SEPARATOR.join(a) for a in absent]))
    body: dict[str, Any] = {"inputs": inputs}
    if top_k is not None:
        body["parameters"] = {TOP_K: top_k}
    return body


def parse_request(texts: Sequence[str]) -> dict[str, Any]:
    """A v2 JSON infer request of the parser model: one text per person."""
    return {"inputs": [TEXT.tensor([len(texts)], list(texts))]}


def split_list(element: str) -> tuple[str, ...]:
    """The symptom ids of an output element (``supporting_symptoms``, ``missing_symptoms``)."""
    return tuple(p.strip() for p in str(element).split(LIST_SEPARATOR) if p.strip())
