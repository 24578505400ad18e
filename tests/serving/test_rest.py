"""REST in-process (TestClient), every test on both the fast path and KServe's own path:
health, metadata, answers, v1, binary tensors, every error case, limits, the repository
extension, metrics and logs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from testkit import FUNGAL

from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME
from symptom_dx.model import SymptomClassifier, disease_profiles
from symptom_dx.vocabulary import vocabulary

INFER = f"/v2/models/{MODEL_NAME}/infer"
V1 = f"/v1/models/{MODEL_NAME}:predict"


def post(client, body, path=INFER, **kw):
    if isinstance(body, dict | list):
        return client.post(path, json=body, **kw)
    return client.post(path, content=body, headers={"content-type": "application/json"}, **kw)


def symptoms_body(data, shape=None, datatype="BYTES", parameters=None) -> dict:
    tensor = {"name": "symptoms", "datatype": datatype, "shape": shape or [len(data)], "data": data}
    body = {"inputs": [tensor]}
    if parameters is not None:
        body["parameters"] = parameters
    return body


def outputs(response) -> dict:
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}


def binary_request(tensor: InferInput) -> tuple[bytes, dict]:
    """A binary tensor extension request, as KServe's REST client sends it."""
    body, json_length = InferRequest(model_name=MODEL_NAME, infer_inputs=[tensor]).to_rest()
    headers = {"inference-header-content-length": str(json_length)}
    return body, {**headers, "content-type": "application/octet-stream"}


def vector(texts) -> np.ndarray:
    vocab = vocabulary()
    X = np.zeros((len(texts), vocab.size), dtype=np.float32)
    for i, t in enumerate(texts):
        X[i, [vocab.position(s) for s in vocab.parse(t)]] = 1
    return X


# -- health, metadata -------------------------------------------------------------------------
def test_health_readiness_and_metadata(rest):
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL_NAME}/ready"):
        assert rest.get(path).status_code == 200, path
    r = rest.get("/v2/models/nope/ready")
    assert r.status_code == 404 and r.json() == {"error": "Model with name nope does not exist."}
    meta = rest.get(f"/v2/models/{MODEL_NAME}").json()
    assert meta["name"] == MODEL_NAME
    assert meta["inputs"] == [t.metadata() for t in contract.INPUTS]
    assert meta["outputs"] == [t.metadata() for t in contract.OUTPUTS]
    assert {t["name"]: t for t in meta["inputs"]}["input-0"]["shape"] == [-1, 132]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"/v2/models/{MODEL_NAME}/versions/1"),
        ("GET", f"/v2/models/{MODEL_NAME}/versions/1/ready"),
        ("POST", f"/v2/models/{MODEL_NAME}/versions/1/infer"),
        ("POST", f"/v1/models/{MODEL_NAME}:explain"),
    ],
)
def test_kserves_routes_we_do_not_serve_are_404s_naming_those_we_do(rest, method, path):
    body = {"instances": [FUNGAL]} if path.startswith("/v1/") else symptoms_body([FUNGAL])
    r = rest.request(method, path, json=body)
    assert r.status_code == 404, r.text
    assert "this server answers GET /v2/health/live" in r.json()["error"]


# -- answers ----------------------------------------------------------------------------------
def test_names_rank_and_explain(rest):
    texts = [FUNGAL, "Continuous Sneezing, shivering, chills, watering from eyes"]
    out = outputs(post(rest, symptoms_body(texts, parameters={"top_k": 3})))
    assert out["disease"]["shape"] == [2, 3] and out["probability"]["datatype"] == "FP32"
    assert out["disease"]["data"][0] == "Fungal infection"
    assert out["disease"]["data"][3] == "Allergy"
    probabilities = np.array(out["probability"]["data"]).reshape(2, 3)
    assert np.all(np.diff(probabilities, axis=1) <= 0)
    assert out["supporting_symptoms"]["data"][0] == "itching,skin_rash,nodal_skin_eruptions"
    missing = out["missing_symptoms"]["data"][0].split(",")
    assert missing and not set(missing) & {"itching", "skin_rash", "nodal_skin_eruptions"}
    assert out["next_question"]["shape"] == [2]
    assert out["next_question"]["data"][0] in vocabulary()


def test_default_top_k_request_id_and_string_top_k(rest):
    body = {**symptoms_body([FUNGAL]), "id": "req-42"}
    r = post(rest, body)
    assert r.json()["id"] == "req-42"
    assert outputs(r)["disease"]["shape"] == [1, contract.DEFAULT_TOP_K]
    assert outputs(post(rest, symptoms_body([FUNGAL], parameters={"top_k": " 2 "})))["disease"][
        "shape"
    ] == [1, 2]


def test_binary_tensors_answer_as_json_does(rest):
    json_out = outputs(post(rest, symptoms_body([FUNGAL])))
    tensor = InferInput("symptoms", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([FUNGAL], dtype=np.object_), binary_data=True)
    body, headers = binary_request(tensor)
    bin_out = outputs(rest.post(INFER, content=body, headers=headers))
    assert bin_out["disease"]["data"] == json_out["disease"]["data"]
    np.testing.assert_allclose(bin_out["probability"]["data"], json_out["probability"]["data"])


def test_vector_input_as_stock_sklearn_clients_send_it(rest):
    texts = [FUNGAL, "cough, high_fever, breathlessness"]
    by_name = outputs(post(rest, symptoms_body(texts)))
    for datatype, X in (("FP32", vector(texts)), ("INT32", vector(texts).astype(np.int32))):
        tensor = contract.VECTOR.tensor(list(X.shape), X.reshape(-1).tolist())
        by_vector = outputs(post(rest, {"inputs": [{**tensor, "datatype": datatype}]}))
        assert by_vector["disease"]["data"] == by_name["disease"]["data"]
    raw = InferInput("input-0", [1, 132], "FP32")
    raw.set_data_from_numpy(vector([FUNGAL]), binary_data=True)
    body, headers = binary_request(raw)
    assert outputs(rest.post(INFER, content=body, headers=headers))["disease"]["data"][0] == (
        "Fungal infection"
    )


def test_absent_symptoms_reweight_and_are_not_asked(rest):
    first = outputs(post(rest, contract.infer_request([["fever", "cough"]])))
    question = first["next_question"]["data"][0]
    denied = outputs(post(rest, contract.infer_request([["fever", "cough"]], [[question]])))
    assert denied["next_question"]["data"][0] != question
    assert denied["probability"]["data"] != first["probability"]["data"]
    none_denied = outputs(post(rest, contract.infer_request([["fever", "cough"]], [[]])))
    assert none_denied["probability"]["data"] == first["probability"]["data"]


def test_batch_of_64(rest):
    ids = [s.id for s in vocabulary().selectable]
    rng = np.random.default_rng(0)
    patients = [list(rng.choice(ids, 3, replace=False)) for _ in range(64)]
    out = outputs(post(rest, contract.infer_request(patients, top_k=4)))
    assert out["disease"]["shape"] == [64, 4] and out["next_question"]["shape"] == [64]


def test_v1_predict_takes_lists_of_names(rest):
    body = {"instances": [["itching", "skin rash", "nodal skin eruptions"], "fever, cough"]}
    r = post(rest, {**body, "top_k": 2}, path=V1)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == 2 and predictions[0]["diseases"][0] == "Fungal infection"
    assert len(predictions[0]["probabilities"]) == 2
    assert set(predictions[0]) >= {"supporting_symptoms", "missing_symptoms", "next_question"}


def test_quality_three_symptoms_from_a_disease_profile(rest, training_set, trained_model_dir):
    classes = SymptomClassifier.load(trained_model_dir).classes
    profiles = disease_profiles(training_set.X, training_set.y, classes)
    ids = vocabulary().ids
    rng = np.random.default_rng(7)
    patients, truth = [], []
    for c, disease in enumerate(classes):
        seen = np.flatnonzero(profiles[c] > 0)
        for _ in range(20):
            patients.append([ids[j] for j in rng.choice(seen, 3, replace=False)])
            truth.append(disease)
    top1 = top3 = 0
    for start in range(0, len(patients), 256):
        out = outputs(post(rest, contract.infer_request(patients[start : start + 256], top_k=3)))
        rows = np.array(out["disease"]["data"]).reshape(-1, 3)
        for row, disease in zip(rows, truth[start : start + 256], strict=True):
            top1 += row[0] == disease
            top3 += disease in row
    n = len(patients)
    assert top1 / n >= 0.92 and top3 / n >= 0.985, (top1 / n, top3 / n)


# -- errors -----------------------------------------------------------------------------------
ABSENT_TWO = {"name": "absent", "datatype": "BYTES", "shape": [2], "data": ["", ""]}
EXTRA = {"name": "extra", "datatype": "BYTES", "shape": [1], "data": ["x"]}


def _vector_tensor(data, shape=(1, 132), datatype="FP32") -> dict:
    return {"inputs": [{**contract.VECTOR.tensor(list(shape), data), "datatype": datatype}]}


BAD_REQUESTS = {
    "unexpected input": ({"inputs": [*symptoms_body([FUNGAL])["inputs"], EXTRA]}, "unexpected"),
    "empty list": (symptoms_body([" , ,"]), "no symptoms"),
    "empty string": (symptoms_body([""]), "no symptoms"),
    "wrong datatype": (symptoms_body([1.0], datatype="FP32"), "BYTES"),
    "shape/data mismatch": (symptoms_body([FUNGAL], shape=[2]), "shape"),
    "2-d names": (symptoms_body([FUNGAL, FUNGAL], shape=[1, 2]), "shape"),
    "data a number": (symptoms_body(5, shape=[1]), "data must be a list"),
    "data true": (symptoms_body(True, shape=[1]), "data must be a list"),
    "element a number": (symptoms_body([5]), "strings"),
    "element null": (symptoms_body([None]), "strings"),
    "top_k zero": (symptoms_body([FUNGAL], parameters={"top_k": 0}), "top_k"),
    "top_k too big": (symptoms_body([FUNGAL], parameters={"top_k": 42}), "top_k"),
    "top_k text": (symptoms_body([FUNGAL], parameters={"top_k": "many"}), "top_k"),
    "top_k superscript": (symptoms_body([FUNGAL], parameters={"top_k": "²"}), "top_k"),
    "top_k fraction": (symptoms_body([FUNGAL], parameters={"top_k": 2.5}), "top_k"),
    "top_k true": (symptoms_body([FUNGAL], parameters={"top_k": True}), "top_k"),
    "top_k list": (symptoms_body([FUNGAL], parameters={"top_k": [3]}), "top_k"),
    "parameters not an object": (symptoms_body([FUNGAL], parameters=[1]), "parameters"),
    "no inputs": ({"inputs": []}, "no inputs"),
    "inputs not a list": ({"inputs": {"name": "symptoms"}}, "inputs"),
    "input twice": ({"inputs": symptoms_body([FUNGAL])["inputs"] * 2}, "twice"),
    "negative shape": (symptoms_body([FUNGAL], shape=[-1]), "shape"),
    "too many patients": (symptoms_body(["itching"] * 1025), "at most 1024 patients"),
    "vector wrong width": (_vector_tensor([0] * 131, (1, 131)), "shape"),
    "vector not 0/1": (_vector_tensor([2] * 132), "0 and 1"),
    "vector all zeros": (_vector_tensor([0] * 132), "no symptoms"),
    "vector of strings": (_vector_tensor(["a"], datatype="BYTES"), "numeric"),
    "vector too short": (_vector_tensor([1] * 10), "fill shape"),
    "absent count": ({"inputs": [*symptoms_body([FUNGAL])["inputs"], ABSENT_TWO]}, "absent"),
    "malformed JSON": (b'{"inputs": [', "malformed JSON"),
    "JSON not an object": (b"[1, 2, 3]", "JSON object"),
    "not UTF-8 JSON": (b"\xff\xfe", "malformed JSON"),
    "element too long": (symptoms_body(["x" * 9000]), "longer than 8192 characters"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_400_with_a_clear_message(rest, case):
    body, expected = BAD_REQUESTS[case]
    r = post(rest, body)
    assert r.status_code == 400, r.text
    assert expected in r.json()["error"]


def test_unknown_symptom_names_it_and_the_closest_known_names(rest):
    name = "blue toenails"
    suggestions = vocabulary().suggestions(name)
    assert vocabulary().lookup(name) is None and suggestions
    error = post(rest, symptoms_body([name])).json()["error"]
    assert f"'{name}'" in error and all(s in error for s in suggestions)
    r = post(rest, symptoms_body([FUNGAL, name]))
    assert r.status_code == 400 and "patient 1" in r.json()["error"]


def test_free_text_is_read_and_what_was_read_is_answered(rest):
    """A sentence, a list with a name no symptom has, and a list of known names: each patient
    ranked on what was understood; the answer says what that was, what the patient denied and
    what was not understood."""
    texts = [
        "I keep throwing up and have a bad headache but no fever",
        "itching, blue toenails",
        "itching, skin_rash",
    ]
    r = post(rest, symptoms_body(texts))
    assert r.status_code == 200, r.text
    out = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert out["understood"][0].split(",") == ["vomiting", "headache"]
    assert out["denied"] == ["high_fever", "", ""]
    assert out["not_understood"] == ["", "blue toenails", ""]
    assert out["understood"][1:] == ["itching", "itching,skin_rash"]


def test_free_text_that_names_no_symptom_the_patient_has_is_400(rest):
    r = post(rest, symptoms_body(["no fever and no cough"]))
    assert r.status_code == 400 and "name at least one symptom you have" in r.json()["error"]
    r = post(rest, symptoms_body(["x" * 9000 + " fever"]))
    assert r.status_code == 400


def test_binary_tensor_edge_cases_are_400(rest):
    header = b'{"inputs":[{"name":"symptoms","datatype":"BYTES","shape":[1],'
    cases = {
        "bad binary_data_size": header + b'"parameters":{"binary_data_size":"x"}}]}',
        "size past the end": header + b'"parameters":{"binary_data_size":999}}]}',
        "no inputs key": b'{"parameters":{"binary_data_size":4}}',
    }
    for case, json_part in cases.items():
        headers = {"inference-header-content-length": str(len(json_part))}
        r = rest.post(INFER, content=json_part + b"\x05\x00\x00\x00ab", headers=headers)
        assert r.status_code == 400, (case, r.text)
    bad_length = rest.post(INFER, content=b"{}", headers={"inference-header-content-length": "x"})
    assert bad_length.status_code == 400
    not_utf8 = InferInput("symptoms", [1], "BYTES")
    not_utf8.set_data_from_numpy(np.array([b"\xffitching"], dtype=np.object_), binary_data=True)
    body, headers = binary_request(not_utf8)
    r = rest.post(INFER, content=body, headers=headers)
    assert r.status_code == 400 and "itching" not in r.text
    mismatch = InferInput("input-0", [2, 132], "FP32")
    mismatch.set_data_from_numpy(np.zeros((2, 132), np.float32), binary_data=True)
    body, headers = binary_request(mismatch)
    r = rest.post(INFER, content=body.replace(b"[2,132]", b"[3,132]"), headers=headers)
    assert r.status_code == 400, r.text


def test_v1_errors_are_400(rest):
    for body, expected in (
        ({"instances": [["blue toenails"]]}, "blue toenails"),
        ({"instances": []}, "instances"),
        ({"instances": [[1, 2]]}, "instance"),
        ({"instances": [["fever"]], "top_k": 99}, "top_k"),
        ([1, 2], "instances"),
        (b'{"instances": [', "malformed"),
        (b"5", "instances"),
    ):
        r = post(rest, body, path=V1)
        assert r.status_code == 400, (body, r.text)
        assert expected in r.json()["error"]


def test_too_many_inexact_names_is_refused_quickly_naming_the_limit(rest, near_miss):
    body = near_miss.near_miss_body(seed=1)
    started = time.monotonic()
    r = post(rest, body)
    took = time.monotonic() - started
    assert r.status_code == 400 and f"{contract.MAX_INEXACT_NAMES}" in r.json()["error"]
    assert took < 1.0
    many_unknown = ",".join(f"nonsense{i}" for i in range(100))
    r = post(rest, symptoms_body([many_unknown]))
    assert r.status_code == 400 and "and 95 more" in r.json()["error"]


def test_contradictory_request(rest):
    both = contract.infer_request([["itching", "skin_rash"]], [["itching"]])
    r = post(rest, both)
    assert r.status_code == 400 and "both present and absent: itching" in r.json()["error"]


@pytest.mark.parametrize("path", [INFER, V1, "/v2/repository/models/x/load", "/nowhere"])
def test_every_route_refuses_a_body_over_the_limit(rest, path):
    labels = {"model_name": MODEL_NAME, "reason": "body_too_large"}
    before = REGISTRY.get_sample_value("disease_classifier_rejected_requests_total", labels)
    big = b"x" * (contract.MAX_BODY_BYTES + 1)
    r = rest.post(path, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    after = REGISTRY.get_sample_value("disease_classifier_rejected_requests_total", labels)
    assert after - before == (1 if path in (INFER, V1) else 0)
    assert post(rest, symptoms_body(["itching"])).status_code == 200


@pytest.mark.parametrize("path", [INFER, V1])
def test_a_chunked_body_is_limited_while_it_is_read(rest, path):
    def chunks():  # no content-length
        for _ in range(9):
            yield b" " * (1024 * 1024)

    r = rest.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]


# -- repository extension, readiness -----------------------------------------------------------
def test_repository_extension_is_closed_by_default(rest):
    for verb in ("unload", "load"):
        r = rest.post(f"/v2/repository/models/{MODEL_NAME}/{verb}")
        assert r.status_code == 403 and "--allow_repository_changes" in r.json()["error"]
    assert rest.get("/v2/health/ready").status_code == 200
    assert post(rest, symptoms_body(["itching"])).status_code == 200


def test_readiness_is_false_while_unloaded_and_load_brings_it_back(rest, server):
    extension = server.model_repository_extension
    extension.allow_changes = True
    try:
        assert rest.post("/v2/repository/models/nope/unload").status_code == 404
        assert rest.post(f"/v2/repository/models/{MODEL_NAME}/unload").status_code == 200
        assert rest.get("/v2/health/ready").status_code == 503
        assert rest.get(f"/v2/models/{MODEL_NAME}/ready").status_code == 404
        assert post(rest, symptoms_body(["itching"])).status_code == 404
        assert rest.post(f"/v2/repository/models/{MODEL_NAME}/load").status_code == 200
    finally:
        extension.allow_changes = False
        if MODEL_NAME not in server.registered_models.get_models():
            server.registered_models.load(MODEL_NAME)
    assert rest.get("/v2/health/ready").status_code == 200
    assert post(rest, symptoms_body(["itching"])).status_code == 200


# -- metrics, logs ----------------------------------------------------------------------------
def _samples() -> set:
    text = _exposition()
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _exposition() -> str:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY).decode()


def test_metrics_have_latency_histograms_counters_and_training_gauges(rest):
    post(rest, symptoms_body([FUNGAL]))
    post(rest, symptoms_body(["blue toenails"]))
    post(rest, b"{")
    assert rest.get("/metrics").status_code == 200
    samples = _samples()
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
        ("disease_classifier_training_symptom_share", ("symptom", "itching")),
        ("disease_classifier_training_disease_share", ("disease", "Fungal infection")),
    ):
        labels = tuple(sorted([model, label] if label else [model]))
        assert (name, labels) in samples, (name, labels)


def test_training_gauges_hold_the_models_reference(rest, classifier):
    reference = classifier.classifier.reference
    symptoms = {
        s.labels["symptom"]: s.value
        for f in text_string_to_metric_families(_exposition())
        if f.name == "disease_classifier_training_symptom_share"
        for s in f.samples
    }
    diseases = {
        s.labels["disease"]: s.value
        for f in text_string_to_metric_families(_exposition())
        if f.name == "disease_classifier_training_disease_share"
        for s in f.samples
    }
    assert len(symptoms) == contract.N_SYMPTOMS and len(diseases) == contract.N_DISEASES
    assert symptoms == pytest.approx(reference.symptom_share)
    assert sum(diseases.values()) == pytest.approx(1.0, abs=1e-4)


def test_made_up_model_names_add_no_series(rest):
    before = len(_exposition().splitlines())
    for i in range(200):
        r = post(rest, symptoms_body(["blue toenails"]), path=f"/v2/models/made-up-{i}/infer")
        assert r.status_code == 404
        assert post(rest, {"instances": ["x"]}, path=f"/v1/models/made-up-{i}:predict").status_code
    assert "made-up" not in _exposition()
    assert len(_exposition().splitlines()) == before


def test_no_symptom_text_and_no_traceback_in_logs(rest, server_log):
    marker = "zzqx secret complaint"
    post(rest, symptoms_body([f"itching, {marker}"]))
    post(rest, symptoms_body([marker] * 2, shape=[1]))
    post(rest, {"instances": [[marker]]}, path=V1)
    post(rest, {"inputs": [{"name": marker, "datatype": marker, "shape": [1], "data": [marker]}]})
    tensor = InferInput("symptoms", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([marker.encode() + b"\xff"], np.object_), binary_data=True)
    body, headers = binary_request(tensor)
    rest.post(INFER, content=body, headers=headers)
    post(rest, symptoms_body([FUNGAL]))
    log = server_log.text
    assert "rejected a request" in log  # the reason codes are logged
    assert marker not in log and "nodal_skin_eruptions" not in log
    assert "Traceback" not in log


def test_symptoms_unlike_every_disease_pattern_are_flagged(rest, classifier):
    """'None of these fits': three symptoms no disease pattern has together are flagged out of
    pattern, a typical fungal infection is not."""
    ids = vocabulary().ids
    odd = ["itching", "chest_pain", "irregular_sugar_level"]
    assert classifier.classifier.out_of_pattern([[ids.index(s) for s in odd]])[0]
    r = post(rest, symptoms_body([", ".join(odd), FUNGAL]))
    assert r.status_code == 200
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["out_of_pattern"]["datatype"] == "BOOL"
    assert out["out_of_pattern"]["data"] == [True, False]
