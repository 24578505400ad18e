"""Tensors in: the input tensors and parameters of a request decoded into a ``Query``
(symptom positions per patient), every bad request into a ``RequestRejected`` that says what
was wrong. The symptoms themselves are read by ``serving.symptom_inputs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from serving import protocol
from serving.protocol import Query, RequestRejected, Tensor, shown
from serving.symptom_inputs import (
    InlineBudget,
    RequestBudget,
    positions_from_names,
    positions_from_vector,
    read_symptoms,
)
from symptom_dx import contract
from symptom_dx.vocabulary import vocabulary

_DIGITS = re.compile(r"[0-9]{1,4}")


def decode_inputs(
    inputs: Sequence[Tensor], parameters: Any, n_classes: int, inline: bool = False
) -> Query:
    """The input tensors and parameters of one request -> Query (or RequestRejected).

    ``inline``: raise NeedsWorker past what decoding on the event loop may spend
    (``InlineBudget``); the answer is the same either way.
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
            raise RequestRejected("bad_input", f"input '{shown(t.name)}' given twice")
        by_name[t.name] = t
    top_k = top_k_from(parameters, n_classes)
    budget = InlineBudget() if inline else RequestBudget()
    symptoms = by_name.pop(names, None)
    absent_t = by_name.pop(contract.ABSENT.name, None)
    if symptoms is not None:
        if by_name:
            raise RequestRejected(
                "bad_input", f"unexpected input(s) beside '{names}': {shown(sorted(by_name))}"
            )
        read = read_symptoms(texts_of(symptoms), budget)
        present, form = read.present, "names"
    else:
        if len(by_name) != 1:
            raise RequestRejected(
                "bad_input",
                f"expected input '{names}' or exactly one [N, {vector}] vector input, "
                f"got {shown(sorted(by_name)) or 'none'}",
            )
        (t,) = by_name.values()
        if t.datatype not in contract.VECTOR_DATATYPES:
            raise RequestRejected(
                "bad_datatype",
                f"vector input '{shown(t.name)}' must be numeric or BOOL (e.g. FP32), "
                f"got {shown(t.datatype)}",
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
                prefix = protocol.patient_prefix(i, len(present))
                named = ", ".join(ids[j] for j in both)
                raise RequestRejected(
                    "bad_input", f"{prefix}symptom(s) both present and absent: {named}"
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
            raise RequestRejected("bad_input", f"input '{shown(name)}' has no data")
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


# -- the parts ---------------------------------------------------------------------------------
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
            f"{limit}, got {shown(repr(value))}",
        )
    return value


def texts_of(t: Tensor) -> list[str]:
    """A BYTES [N] (or [N, 1]) tensor's elements as str."""
    if t.datatype != contract.BYTES:
        raise RequestRejected(
            "bad_datatype", f"input '{t.name}' must have datatype BYTES, got {shown(t.datatype)}"
        )
    shape = protocol.check_shape(t)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise RequestRejected(
            "bad_shape", f"input '{t.name}' must have shape [N] with N >= 1, got {shape}"
        )
    values = protocol.flat_data(t)
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
