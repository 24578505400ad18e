"""A hostile client, bounded to about a minute (hypothesis): malformed envelopes, scalars,
wrong types, non-decimal digits, binary-tensor edge cases, v1 bodies and undecodable gRPC
messages. No answer may be a 5xx / INTERNAL / UNKNOWN, no body may carry exception text, and
nothing may log a traceback. The counts are printed (``pytest -s``)."""

from __future__ import annotations

import json
import re
from collections import Counter

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from symptom_dx.contract import MODEL_NAME

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

INFER = f"/v2/models/{MODEL_NAME}/infer"
V1 = f"/v1/models/{MODEL_NAME}:predict"
EXCEPTION_TEXT = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b|struct\.error|File \"")
COUNTS: Counter = Counter()
FUZZ = settings(
    max_examples=350,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _dumps(value) -> bytes:
    """JSON as a client may write it: integers past 64 bits, Infinity (not JSON at all)."""
    return json.dumps(value).encode()


# -- what a hostile client sends ---------------------------------------------------------------
DIGITS = st.sampled_from(["²", "٣", "३", "①", "3", " 3", "3.0", "1e3", "-1", "0x3", "", "½"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    DIGITS,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
NAMES = st.sampled_from(["symptoms", "absent", "input-0", "x", ""]) | st.text(max_size=8)
DATATYPES = st.sampled_from(["BYTES", "FP32", "INT64", "BOOL", "FP16", "bytes", "XX", ""])
SHAPES = st.lists(st.integers(-3, 2000), max_size=3) | JSON
DATA = st.one_of(
    JSON,
    st.lists(
        st.sampled_from(
            ["itching", "fever, cough", "blue toenails", "no fever but a cough", "", "\ud800"]
        ),
        max_size=4,
    ),
    st.lists(st.integers(-1, 2), max_size=140),
)
TENSOR = st.fixed_dictionaries(
    {},
    optional={"name": NAMES, "datatype": DATATYPES, "shape": SHAPES, "data": DATA, "x": JSON},
)
PARAMETERS = st.one_of(JSON, st.fixed_dictionaries({"top_k": SCALARS | JSON}))
ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.lists(TENSOR, max_size=3) | JSON,
        "parameters": PARAMETERS,
        "id": JSON,
        "outputs": JSON,
    },
)

# Near-valid requests (a names tensor, any top_k): some are answered, so answers are fuzzed too.
NEAR_VALID = st.builds(
    lambda texts, top_k: {
        "inputs": [{"name": "symptoms", "datatype": "BYTES", "shape": [len(texts)], "data": texts}],
        "parameters": {"top_k": top_k},
    },
    st.lists(st.sampled_from(["itching", "fever, cough", "skin rashh", "", "x" * 65]), min_size=1),
    SCALARS | st.integers(1, 41),
)


def _check_rest(response, kind: str) -> None:
    COUNTS[f"rest {kind}"] += 1
    COUNTS[f"rest {response.status_code}"] += 1
    assert response.status_code < 500, (kind, response.status_code, response.text[:300])
    assert not EXCEPTION_TEXT.search(response.text), (kind, response.text[:300])


@FUZZ
@given(body=ENVELOPE | NEAR_VALID)
def test_v2_envelopes(rest, body):
    _check_rest(rest.post(INFER, content=_dumps(body)), "v2 JSON")


@FUZZ
@given(body=st.binary(max_size=200) | JSON.map(_dumps))
def test_raw_bodies(rest, body):
    path = INFER if len(body) % 2 else V1
    _check_rest(rest.post(path, content=body, headers={"content-type": "application/json"}), "raw")


@FUZZ
@given(header=ENVELOPE, tail=st.binary(max_size=64), declared=st.integers(-5, 400) | DIGITS)
def test_binary_tensor_requests(rest, header, tail, declared):
    inputs = header.get("inputs")
    if isinstance(inputs, list):  # ask for binary data for some inputs
        for t in (t for t in inputs[::2] if isinstance(t, dict)):
            t.pop("data", None)
            t["parameters"] = {"binary_data_size": len(tail) // 2 or declared}
    json_part = _dumps(header)
    length = declared if isinstance(declared, str) else str(len(json_part) + declared % 3)
    headers = {"inference-header-content-length": length.encode()}
    _check_rest(rest.post(INFER, content=json_part + tail, headers=headers), "binary")


@FUZZ
@given(instances=JSON, top_k=SCALARS, extra=JSON)
def test_v1_bodies(rest, instances, top_k, extra):
    body = {"instances": instances, "top_k": top_k, "x": extra}
    _check_rest(rest.post(V1, content=_dumps(body)), "v1")


# -- gRPC -----------------------------------------------------------------------------------------
GRPC_BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
METHODS = ["ModelInfer", "ModelMetadata", "ModelReady", "ServerReady", "RepositoryModelUnload"]


def _check_grpc(channel, method: str, message: bytes, kind: str) -> None:
    COUNTS[f"grpc {kind}"] += 1
    call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
    try:
        call(message, timeout=10)
        COUNTS["grpc OK"] += 1
    except grpc.RpcError as e:
        COUNTS[f"grpc {e.code().name}"] += 1
        assert e.code() not in GRPC_BAD, (kind, e.code(), e.details())
        assert not EXCEPTION_TEXT.search(e.details() or ""), (kind, e.details())


@st.composite
def infer_requests(draw) -> bytes:
    request = pb.ModelInferRequest(model_name=draw(st.sampled_from([MODEL_NAME, "nope", ""])))
    for _ in range(draw(st.integers(0, 3))):
        tensor = request.inputs.add(
            name=draw(NAMES), datatype=draw(DATATYPES), shape=draw(st.lists(st.integers(-3, 300)))
        )
        kind = draw(st.sampled_from(["bytes", "ints", "fp32", "none"]))
        if kind == "bytes":
            tensor.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=30))))
        elif kind == "ints":
            tensor.contents.int_contents.extend(draw(st.lists(st.integers(-5, 5), max_size=140)))
        elif kind == "fp32":
            tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=140)))
    request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=40), max_size=3)))
    top_k = draw(st.one_of(st.none(), SCALARS))
    if isinstance(top_k, str):
        request.parameters["top_k"].string_param = top_k
    elif isinstance(top_k, bool):
        request.parameters["top_k"].bool_param = top_k
    elif isinstance(top_k, int) and -(2**63) <= top_k < 2**63:
        request.parameters["top_k"].int64_param = top_k
    return request.SerializeToString()


@FUZZ
@given(message=infer_requests())
def test_grpc_infer_requests(grpc_target, message):
    with grpc.insecure_channel(grpc_target) as channel:
        _check_grpc(channel, "ModelInfer", message, "ModelInfer")


@FUZZ
@given(method=st.sampled_from(METHODS), message=st.binary(max_size=64))
def test_undecodable_grpc_messages(grpc_target, method, message):
    with grpc.insecure_channel(grpc_target) as channel:
        _check_grpc(channel, method, message, "bytes")


@pytest.fixture(scope="module", autouse=True)
def no_traceback_in_the_log(module_log):
    """One log capture around the whole module: no traceback, no internal error."""
    yield
    total = sum(v for k, v in COUNTS.items() if k.split()[1] in ("v2", "raw", "binary", "v1"))
    grpc_total = COUNTS["grpc ModelInfer"] + COUNTS["grpc bytes"]
    print(f"\nfuzz: {total} REST requests, {grpc_total} gRPC messages; answers {dict(COUNTS)}")
    assert "Traceback" not in module_log.text and "internal error" not in module_log.text
