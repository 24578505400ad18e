"""The parser model (``symptom-parser``): free text in, what was read from it out, on REST and
gRPC, with the classifier's limits and error answers; and the same reading as the classifier's
own (its ``understood``, ``denied`` and ``not_understood`` outputs for the same text)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME, PARSER_MODEL_NAME

PARSE = f"/v2/models/{PARSER_MODEL_NAME}/infer"
TEXTS = [
    "no fever but a sore throat",
    "머리가 아프고 토했어요, 열은 없어요",
    "itchy skin, rash, purple elbows",
    "purple elbows",  # nothing understood: an answer, not a 400
]
READ = {
    "understood": ["throat_irritation", "headache,vomiting", "itching,skin_rash", ""],
    "denied": ["high_fever", "high_fever", "", ""],
    "not_understood": ["", "", "purple elbows", "purple elbows"],
}


def _outputs(answer: dict) -> dict[str, list]:
    return {o["name"]: o["data"] for o in answer["outputs"]}


def test_reads_english_and_korean_sentences_lists_and_negations(rest):
    r = rest.post(PARSE, json=contract.parse_request(TEXTS) | {"id": "r-1"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["model_name"], answer["id"]) == (PARSER_MODEL_NAME, "r-1")
    assert _outputs(answer) == READ
    assert all(o["shape"] == [len(TEXTS)] for o in answer["outputs"])


def test_reads_what_the_classifier_reads(rest):
    for text in TEXTS[:3]:
        ranked = rest.post(f"/v2/models/{MODEL_NAME}/infer", json=contract.infer_request([[text]]))
        parsed = rest.post(PARSE, json=contract.parse_request([text]))
        assert ranked.status_code == parsed.status_code == 200
        ranked_outputs = _outputs(ranked.json())
        assert {k: ranked_outputs[k] for k in READ} == _outputs(parsed.json())


def test_metadata_and_readiness(rest):
    meta = rest.get(f"/v2/models/{PARSER_MODEL_NAME}").json()
    assert meta["inputs"] == [t.metadata() for t in contract.PARSER_INPUTS]
    assert meta["outputs"] == [t.metadata() for t in contract.PARSER_OUTPUTS]
    assert rest.get(f"/v2/models/{PARSER_MODEL_NAME}/ready").status_code == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"inputs": []}, "expected one input 'text'"),
        (contract.infer_request([["headache"]]), "expected one input 'text'"),
        (
            {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
            "must have datatype BYTES",
        ),
        (
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["x"]}]},
            "has shape [2] but 1 elements",
        ),
        (contract.parse_request(["x" * (contract.MAX_ELEMENT_CHARS + 1)]), "longer than"),
        (
            contract.parse_request(["x" * contract.MAX_ELEMENT_CHARS] * 3),
            f"more than {contract.MAX_FREE_TEXT_CHARS} characters",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(rest, body, error):
    r = rest.post(PARSE, json=body)
    assert r.status_code == 400 and error in r.json()["error"], r.text


def test_v1_is_refused(rest):
    r = rest.post(f"/v1/models/{PARSER_MODEL_NAME}:predict", json={"instances": ["fever"]})
    assert r.status_code == 400 and "v2 requests only" in r.json()["error"]


def test_grpc_reads_the_same_and_maps_errors(grpc_target):
    text = InferInput(contract.TEXT.name, [len(TEXTS)], contract.BYTES)
    text.set_data_from_numpy(np.array(TEXTS, dtype=object))

    async def call():
        async with InferenceGRPCClient(grpc_target, retries=0, timeout=10) as client:
            request = InferRequest(model_name=PARSER_MODEL_NAME, infer_inputs=[text])
            return await client.infer(request)

    outputs = {o.name: [v.decode() for v in o.as_numpy()] for o in asyncio.run(call()).outputs}
    assert outputs == READ
    with grpc.insecure_channel(grpc_target) as channel:
        bad = pb.ModelInferRequest(
            model_name=PARSER_MODEL_NAME,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="text",
                    datatype="FP32",
                    shape=[1],
                    contents=pb.InferTensorContents(fp32_contents=[1.0]),
                )
            ],
        )
        with pytest.raises(grpc.RpcError) as info:
            GRPCInferenceServiceStub(channel).ModelInfer(bad, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must have datatype BYTES" in info.value.details()
