"""The predictor as a real subprocess, called with KServe's own REST and gRPC clients and raw
HTTP: names and vector inputs, batches, every error case, readiness, metadata, metrics, logs,
loopback binding, loading from a real S3 server, and ranking quality through the endpoint."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from prometheus_client.parser import text_string_to_metric_families
from testkit import REPO

from serving.launcher import start_model_server
from serving.protocol import DEFAULT_TOP_K, MODEL_NAME, OUTPUTS
from symptom_dx.local.services import free_port
from symptom_dx.model import SymptomClassifier, disease_profiles
from symptom_dx.vocabulary import vocabulary

pytestmark = pytest.mark.integration

INFER = f"/v2/models/{MODEL_NAME}/infer"
FUNGAL = "itching, skin_rash, nodal_skin_eruptions"


def run(coro):
    return asyncio.run(coro)


def names_request(texts, top_k=None, absent=None) -> InferRequest:
    inputs = [InferInput("symptoms", [len(texts)], "BYTES", list(texts))]
    if absent is not None:
        inputs.append(InferInput("absent", [len(absent)], "BYTES", list(absent)))
    params = {"top_k": top_k} if top_k is not None else None
    return InferRequest(model_name=MODEL_NAME, infer_inputs=inputs, parameters=params)


def vector(texts) -> np.ndarray:
    vocab = vocabulary()
    X = np.zeros((len(texts), vocab.size), dtype=np.float32)
    for i, t in enumerate(texts):
        X[i, [vocab.position(s) for s in vocab.parse(t)]] = 1
    return X


async def rest_infer(svc, request: InferRequest):
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
    try:
        return await client.infer(svc.url, request, model_name=MODEL_NAME)
    finally:
        await client.close()


async def grpc_infer(svc, request: InferRequest):
    async with InferenceGRPCClient(svc.extra["grpc"], retries=0, timeout=10) as client:
        return await client.infer(request)


def outputs(response) -> dict[str, np.ndarray]:
    return {o.name: o.as_numpy() for o in response.outputs}


def text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def post(svc, body, path=INFER, **kw) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(svc.url + path, json=body, timeout=10, **kw)
    return httpx.post(
        svc.url + path, content=body, headers={"content-type": "application/json"}, timeout=10
    )


def symptoms_body(data, shape=None, datatype="BYTES", parameters=None) -> dict:
    tensor = {"name": "symptoms", "datatype": datatype, "shape": shape or [len(data)], "data": data}
    body = {"inputs": [tensor]}
    if parameters is not None:
        body["parameters"] = parameters
    return body


# -- health, metadata -------------------------------------------------------------------------
def test_health_readiness_and_metadata(model_server):
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL_NAME}/ready"):
        assert httpx.get(model_server.url + path).status_code == 200, path
    assert httpx.get(model_server.url + "/v2/models/nope/ready").status_code == 404

    meta = httpx.get(f"{model_server.url}/v2/models/{MODEL_NAME}").json()
    assert meta["name"] == MODEL_NAME
    inputs = {t["name"]: t for t in meta["inputs"]}
    assert inputs["symptoms"] == {"name": "symptoms", "datatype": "BYTES", "shape": [-1]}
    assert inputs["absent"]["datatype"] == "BYTES"
    assert inputs["input-0"]["shape"] == [-1, vocabulary().size]
    assert [o["name"] for o in meta["outputs"]] == list(OUTPUTS)
    assert {o["name"]: o["datatype"] for o in meta["outputs"]}["probability"] == "FP32"

    async def grpc_checks():
        async with InferenceGRPCClient(model_server.extra["grpc"], retries=0) as client:
            assert await client.is_server_ready()
            assert await client.is_model_ready(MODEL_NAME)
        async with grpc.aio.insecure_channel(model_server.extra["grpc"]) as channel:
            stub = GRPCInferenceServiceStub(channel)
            return await stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME))

    grpc_meta = run(grpc_checks())
    assert [t.name for t in grpc_meta.outputs] == list(OUTPUTS)
    assert grpc_meta.inputs[0].name == "symptoms"


# -- answers ----------------------------------------------------------------------------------
def test_names_over_rest_with_kserve_client(model_server):
    texts = [FUNGAL, "Continuous Sneezing, shivering, chills, watering from eyes"]
    out = outputs(run(rest_infer(model_server, names_request(texts, top_k=3))))
    assert out["disease"].shape == (2, 3)
    assert out["probability"].shape == (2, 3) and out["probability"].dtype == np.float32
    assert text(out["disease"][0, 0]) == "Fungal infection"
    assert text(out["disease"][1, 0]) == "Allergy"
    assert np.all(np.diff(out["probability"], axis=1) <= 0)
    assert text(out["supporting_symptoms"][0, 0]) == "itching,skin_rash,nodal_skin_eruptions"
    missing = text(out["missing_symptoms"][0, 0]).split(",")
    assert missing and not set(missing) & {"itching", "skin_rash", "nodal_skin_eruptions"}
    assert out["next_question"].shape == (2,)
    assert text(out["next_question"][0]) in vocabulary()


def test_default_top_k_and_binary_tensors_match_json(model_server):
    json_out = outputs(run(rest_infer(model_server, names_request([FUNGAL]))))
    assert json_out["disease"].shape == (1, DEFAULT_TOP_K)
    # KServe's binary tensor extension goes through KServe's own decoding: same answer.
    binary = InferInput("symptoms", [1], "BYTES")
    binary.set_data_from_numpy(np.array([FUNGAL], dtype=np.object_), binary_data=True)
    request = InferRequest(model_name=MODEL_NAME, infer_inputs=[binary])
    bin_out = outputs(run(rest_infer(model_server, request)))
    assert [text(d) for d in bin_out["disease"][0]] == [text(d) for d in json_out["disease"][0]]
    np.testing.assert_allclose(bin_out["probability"], json_out["probability"], rtol=1e-6)


def test_vector_input_as_stock_sklearn_clients_send_it(model_server):
    texts = [FUNGAL, "cough, high_fever, breathlessness"]
    by_name = outputs(run(rest_infer(model_server, names_request(texts))))
    for datatype, X in (("FP32", vector(texts)), ("INT32", vector(texts).astype(np.int32))):
        tensor = InferInput("input-0", list(X.shape), datatype, X.reshape(-1).tolist())
        request = InferRequest(model_name=MODEL_NAME, infer_inputs=[tensor])
        by_vector = outputs(run(rest_infer(model_server, request)))
        assert (by_vector["disease"] == by_name["disease"]).all()
        np.testing.assert_allclose(by_vector["probability"], by_name["probability"], rtol=1e-6)


def test_grpc_names_vector_and_top_k(model_server):
    out = outputs(run(grpc_infer(model_server, names_request([FUNGAL, "fever, cough"], top_k=2))))
    assert out["disease"].shape == (2, 2)
    assert text(out["disease"][0, 0]) == "Fungal infection"
    X = vector([FUNGAL])
    tensor = InferInput("input-0", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=True)  # raw_input_contents
    request = InferRequest(model_name=MODEL_NAME, infer_inputs=[tensor])
    raw = outputs(run(grpc_infer(model_server, request)))
    assert text(raw["disease"][0, 0]) == "Fungal infection"


def test_absent_symptoms_reweight_and_are_not_asked(model_server):
    texts = ["fever, cough"]
    first = outputs(run(rest_infer(model_server, names_request(texts))))
    question = text(first["next_question"][0])
    assert question
    denied = outputs(run(rest_infer(model_server, names_request(texts, absent=[question]))))
    assert text(denied["next_question"][0]) != question
    assert not np.allclose(denied["probability"], first["probability"])
    none_denied = outputs(run(rest_infer(model_server, names_request(texts, absent=[""]))))
    np.testing.assert_allclose(none_denied["probability"], first["probability"])


def test_batch_of_64(model_server):
    ids = [s.id for s in vocabulary().selectable]
    rng = np.random.default_rng(0)
    texts = [", ".join(rng.choice(ids, 3, replace=False)) for _ in range(64)]
    out = outputs(run(rest_infer(model_server, names_request(texts, top_k=4))))
    assert out["disease"].shape == (64, 4) and out["next_question"].shape == (64,)
    np.testing.assert_allclose(out["probability"].sum(axis=1) <= 1.0 + 1e-5, True)


def test_v1_predict_takes_lists_of_names(model_server):
    body = {"instances": [["itching", "skin rash", "nodal skin eruptions"], "fever, cough"]}
    r = post(model_server, {**body, "top_k": 2}, path=f"/v1/models/{MODEL_NAME}:predict")
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == 2
    assert predictions[0]["diseases"][0] == "Fungal infection"
    assert len(predictions[0]["probabilities"]) == 2
    assert set(predictions[0]) >= {"supporting_symptoms", "missing_symptoms", "next_question"}


# -- errors -----------------------------------------------------------------------------------
def _unknown_name() -> tuple[str, list[str]]:
    name = "bellyache"
    suggestions = vocabulary().suggestions(name)
    assert vocabulary().lookup(name) is None and suggestions
    return name, suggestions


ABSENT_TWO = {"name": "absent", "datatype": "BYTES", "shape": [2], "data": ["", ""]}
EXTRA = {"name": "extra", "datatype": "BYTES", "shape": [1], "data": ["x"]}
BAD_REQUESTS = {
    "unexpected input": ({"inputs": [*symptoms_body([FUNGAL])["inputs"], EXTRA]}, "unexpected"),
    "empty list": (symptoms_body([" , ,"]), "no symptoms"),
    "empty string": (symptoms_body([""]), "no symptoms"),
    "wrong datatype": (symptoms_body([1.0], datatype="FP32"), "BYTES"),
    "shape/data mismatch": (symptoms_body([FUNGAL], shape=[2]), "shape"),
    "2-d names": (symptoms_body([FUNGAL, FUNGAL], shape=[1, 2]), "shape"),
    "top_k zero": (symptoms_body([FUNGAL], parameters={"top_k": 0}), "top_k"),
    "top_k too big": (symptoms_body([FUNGAL], parameters={"top_k": 42}), "top_k"),
    "top_k text": (symptoms_body([FUNGAL], parameters={"top_k": "many"}), "top_k"),
    "top_k fraction": (symptoms_body([FUNGAL], parameters={"top_k": 2.5}), "top_k"),
    "no inputs": ({"inputs": []}, "no inputs"),
    "inputs not a list": ({"inputs": {"name": "symptoms"}}, "inputs"),
    "input twice": ({"inputs": symptoms_body([FUNGAL])["inputs"] * 2}, "twice"),
    "vector wrong width": (
        {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 131], "data": [0] * 131}]},
        "shape",
    ),
    "vector not 0/1": (
        {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 132], "data": [2] * 132}]},
        "0 and 1",
    ),
    "vector all zeros": (
        {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 132], "data": [0] * 132}]},
        "no symptoms",
    ),
    "vector of strings": (
        {"inputs": [{"name": "input-0", "datatype": "BYTES", "shape": [1, 132], "data": ["a"]}]},
        "numeric",
    ),
    "absent count": ({"inputs": [*symptoms_body([FUNGAL])["inputs"], ABSENT_TWO]}, "absent"),
    "malformed JSON": (b'{"inputs": [', "malformed JSON"),
    "JSON not an object": (b"[1, 2, 3]", "JSON object"),
    "not UTF-8 JSON": (b"\xff\xfe", "malformed JSON"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_400_with_a_clear_message(model_server, case):
    body, expected = BAD_REQUESTS[case]
    r = post(model_server, body)
    assert r.status_code == 400, r.text
    assert expected in r.json()["error"]


def test_unknown_symptom_names_it_and_the_closest_known_names(model_server):
    name, suggestions = _unknown_name()
    r = post(model_server, symptoms_body([f"itching, {name}"]))
    assert r.status_code == 400
    error = r.json()["error"]
    assert f"'{name}'" in error and all(s in error for s in suggestions)
    # batch: says which patient
    r = post(model_server, symptoms_body([FUNGAL, name]))
    assert r.status_code == 400 and "patient 1" in r.json()["error"]

    async def grpc_error():
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await grpc_infer(model_server, names_request([name]))
        return info.value

    err = run(grpc_error())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and name in err.details()

    async def rest_client_error():
        with pytest.raises(httpx.HTTPStatusError) as info:
            await rest_infer(model_server, names_request([name]))
        return info.value

    assert run(rest_client_error()).response.status_code == 400


def test_v1_errors_are_400(model_server):
    path = f"/v1/models/{MODEL_NAME}:predict"
    name, _ = _unknown_name()
    cases = [
        ({"instances": [[name]]}, name),
        ({"instances": []}, "instances"),
        ({"instances": [[1, 2]]}, "instance"),
        ({"instances": [["fever"]], "top_k": 99}, "top_k"),
        (b'{"instances": [', ""),
    ]
    for body, expected in cases:
        r = post(model_server, body, path=path)
        assert r.status_code == 400, (body, r.text)
        assert expected in r.json()["error"]


def test_server_keeps_serving_after_bad_requests(model_server):
    for body, _ in BAD_REQUESTS.values():
        post(model_server, body)
    assert httpx.get(f"{model_server.url}/v2/models/{MODEL_NAME}/ready").status_code == 200
    r = post(model_server, symptoms_body([FUNGAL]))
    assert r.status_code == 200
    assert model_server.proc.poll() is None


# -- metrics, logs, binding -----------------------------------------------------------------
def test_metrics_have_latency_histograms_and_our_counters(model_server):
    post(model_server, symptoms_body([FUNGAL]))
    post(model_server, symptoms_body(["bellyache"]))
    post(model_server, b"{")
    samples = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(httpx.get(model_server.url + "/metrics").text)
        for s in family.samples
    }
    model = ("model_name", MODEL_NAME)
    for name, label in (
        ("request_predict_seconds_count", None),
        ("request_preprocess_seconds_count", None),
        ("request_postprocess_seconds_count", None),
        ("disease_classifier_predictions_total", ("disease", "Fungal infection")),
        ("disease_classifier_symptoms_seen_total", ("symptom", "nodal_skin_eruptions")),
        ("disease_classifier_rejected_requests_total", ("reason", "unknown_symptom")),
        ("disease_classifier_rejected_requests_total", ("reason", "malformed_json")),
        ("disease_classifier_patients_total", ("form", "names")),
    ):
        labels = tuple(sorted([model, label] if label else [model]))
        assert (name, labels) in samples, (name, labels)


def test_no_symptom_payloads_in_logs(model_server):
    secret = "zzqx secret complaint"
    post(model_server, symptoms_body([f"itching, {secret}"]))
    post(model_server, {"instances": [[secret]]}, path=f"/v1/models/{MODEL_NAME}:predict")

    async def grpc_call():
        with pytest.raises(grpc.aio.AioRpcError):
            await grpc_infer(model_server, names_request([secret]))

    run(grpc_call())
    time.sleep(0.3)
    log = model_server.log_path.read_text()
    assert secret not in log
    assert "nodal_skin_eruptions" not in log
    assert "POST /v2" not in log  # no access log by default


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_listens_on_loopback_only(model_server):
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    for port in (int(model_server.url.rsplit(":", 1)[1]), int(model_server.extra["grpc"][10:])):
        addresses = _listening(port)
        assert addresses and set(addresses) <= loopback, (port, addresses)


# -- quality through the endpoint --------------------------------------------------------------
def test_quality_three_symptoms_from_a_disease_profile(
    model_server, training_set, trained_model_dir
):
    classes = SymptomClassifier.load(trained_model_dir).classes
    profiles = disease_profiles(training_set.X, training_set.y, classes)
    ids = vocabulary().ids
    rng = np.random.default_rng(7)
    texts, truth = [], []
    for c, disease in enumerate(classes):
        seen = np.flatnonzero(profiles[c] > 0)
        for _ in range(20):
            texts.append(", ".join(ids[j] for j in rng.choice(seen, 3, replace=False)))
            truth.append(disease)
    top1 = top3 = 0
    for start in range(0, len(texts), 64):
        batch = texts[start : start + 64]
        out = outputs(run(rest_infer(model_server, names_request(batch, top_k=3))))
        for row, disease in zip(out["disease"], truth[start : start + 64], strict=True):
            names = [text(d) for d in row]
            top1 += names[0] == disease
            top3 += disease in names
    n = len(texts)
    print(
        f"\nendpoint quality, k=3 from profile: top-1 {top1 / n:.3f}, top-3 {top3 / n:.3f} (n={n})"
    )
    assert top1 / n >= 0.92
    assert top3 / n >= 0.985


# -- loading ----------------------------------------------------------------------------------
def test_loads_from_s3_like_the_storage_initializer(s3_server, trained_model_dir, tmp_path):
    from minio import Minio

    host = s3_server.url.removeprefix("http://")
    access, secret = s3_server.extra["access_key"], s3_server.extra["secret_key"]
    client = Minio(host, access, secret, secure=False)
    if not client.bucket_exists("models"):
        client.make_bucket("models")
    for f in Path(trained_model_dir).iterdir():
        client.fput_object("models", f"champion/disease-classifier/{f.name}", str(f))
    env = {
        "AWS_ENDPOINT_URL": s3_server.url,
        "AWS_ACCESS_KEY_ID": access,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "S3_VERIFY_SSL": "0",
    }
    started = time.monotonic()
    svc = start_model_server(
        "s3://models/champion/disease-classifier", free_port(), free_port(), tmp_path, env
    )
    try:
        ready_after = time.monotonic() - started
        r = post(svc, symptoms_body([FUNGAL]))
        assert r.status_code == 200
        assert r.json()["outputs"][0]["data"][0] == "Fungal infection"
        assert ready_after < 15
    finally:
        t = time.monotonic()
        svc.stop()
        assert svc.proc.returncode is not None and time.monotonic() - t < 8


def test_missing_model_fails_fast_with_a_clear_message(tmp_path):
    """Both ways the image can be given a model: --model_dir, or MODEL_DIR in the environment."""
    for flags, env in (
        (["--model_dir", str(tmp_path / "nope")], {}),
        ([], {"MODEL_DIR": str(tmp_path / "nope")}),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "serving", *flags],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert f"model directory {tmp_path / 'nope'} does not exist" in proc.stderr


def test_oversized_and_contradictory_requests_are_refused_quickly(model_server):
    many_unknown = ",".join(f"nonsense{i}" for i in range(300))
    started = time.monotonic()
    r = post(model_server, symptoms_body([many_unknown]))
    assert r.status_code == 400 and "and 295 more" in r.json()["error"]
    r = post(model_server, symptoms_body(["x" * 9000]))
    assert r.status_code == 400 and "longer than 8192 characters" in r.json()["error"]
    assert time.monotonic() - started < 2.0
    both = symptoms_body(["itching, skin_rash"])
    both["inputs"].append(
        {"name": "absent", "datatype": "BYTES", "shape": [1], "data": ["itching"]}
    )
    r = post(model_server, both)
    assert r.status_code == 400 and "both present and absent: itching" in r.json()["error"]
    big = b'{"inputs": [' + b" " * (9 * 1024 * 1024) + b"]}"
    r = post(model_server, big)
    assert r.status_code in (400, 413)  # 413 on the fast path; KServe's app: malformed
    assert post(model_server, symptoms_body(["itching"])).status_code == 200
