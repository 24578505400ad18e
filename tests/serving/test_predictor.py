"""``DiseaseClassifier`` and the decoder called directly: no HTTP, no gRPC."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from testkit import FUNGAL, MISSPELT

from serving import decoding, protocol, symptom_inputs
from serving.fast_path import INLINE_BODY_BYTES, FastPath
from serving.model import INLINE_CHARS, DiseaseClassifier, text_chars
from serving.protocol import RequestRejected, Tensor
from serving.symptom_inputs import INLINE_FUZZY_MATCHES
from symptom_dx import contract
from symptom_dx.errors import SymptomDxError
from symptom_dx.model import METADATA_FILE, TRAINING_REFERENCE, model_sha256
from symptom_dx.vocabulary import vocabulary


def names(*texts: str) -> list[Tensor]:
    return [Tensor("symptoms", "BYTES", [len(texts)], list(texts))]


def rejected(tensors, parameters=None, n_classes=41) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        decoding.decode_inputs(tensors, parameters, n_classes)
    assert info.value.reason_code in protocol.REASONS
    return info.value


# -- the decoder ------------------------------------------------------------------------------
def test_names_and_denied_names_become_positions():
    query = decoding.decode_inputs(
        [*names(FUNGAL, "cough"), Tensor("absent", "BYTES", [2], ["", "high fever"])], None, 41
    )
    assert query.form == "names" and query.top_k == contract.DEFAULT_TOP_K
    assert len(query.present) == 2 and query.absent[0] == [] and len(query.absent[1]) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (3.0, 3), ("3", 3), (" 7 ", 7), ("0003", 3)],
)
def test_top_k_accepts_integers_in_any_honest_form(value, expected):
    assert decoding.top_k_from({"top_k": value}, 41) == expected


@pytest.mark.parametrize("value", [0, 42, 2.5, True, "²", "٣", "3e0", "9" * 5000, None, [3], {}])
def test_top_k_refuses_everything_else(value):
    error = rejected(names("itching"), {"top_k": value})
    assert error.reason_code == "bad_top_k" and len(str(error)) < 200


@pytest.mark.parametrize("data", [5, True, None, "itching", {"a": 1}])
def test_tensor_data_that_is_not_a_list_is_refused(data):
    assert rejected([Tensor("symptoms", "BYTES", [1], data)]).reason_code == "bad_value"


def test_vector_rows_come_flat_or_nested_and_decode_alike():
    X = np.zeros((3, contract.N_SYMPTOMS), dtype=np.float32)
    X[0, [0, 5]] = X[1, [7]] = X[2, [1, 2, 131]] = 1
    expected = [np.flatnonzero(row).tolist() for row in X]
    for data in (X.reshape(-1).tolist(), X.tolist(), [X[0].tolist(), *X[1:].reshape(-1)], X):
        tensor = Tensor("input-0", "FP32", [3, contract.N_SYMPTOMS], data)
        assert symptom_inputs.positions_from_vector(tensor) == expected
    X[1] = 0
    error = rejected([Tensor("input-0", "FP32", [3, contract.N_SYMPTOMS], X.tolist())])
    assert error.reason_code == "empty_symptoms" and str(error).startswith("patient 1:")
    X[1, 3] = np.nan
    assert "0 and 1" in str(rejected([Tensor("in", "FP32", list(X.shape), X.tolist())]))
    ragged = [X[0].tolist(), X[1, :-1].tolist()]
    assert "fill shape" in str(rejected([Tensor("in", "FP32", [2, 132], ragged)]))


def test_the_inexact_names_of_a_request_are_capped(near_miss):
    texts = near_miss.near_miss_texts(patients=4, names=300, seed=2)
    started = time.monotonic()
    error = rejected(names(*texts))
    assert error.reason_code == "too_many_inexact_names"
    assert str(contract.MAX_INEXACT_NAMES) in str(error)
    assert time.monotonic() - started < 1.0
    few = near_miss.near_miss_texts(patients=1, names=contract.MAX_INEXACT_NAMES, seed=3)
    assert len(decoding.decode_inputs(names(*few), None, 41).present[0]) > 1


def test_encoding_follows_the_contract(classifier):
    query = decoding.decode_inputs(names(FUNGAL), {"top_k": 2}, classifier.n_classes)
    tensors = protocol.output_tensors(query, classifier.rank_columns(query, record=False))
    assert [(t["name"], t["datatype"]) for t in tensors] == [
        (t.name, t.datatype) for t in contract.OUTPUTS
    ]
    assert tensors[0]["shape"] == [1, 2] and tensors[-1]["shape"] == [1]


# -- the model object: KServe's preprocess -> predict -> postprocess ---------------------------
def _answer(model: DiseaseClassifier, payload):
    async def run():
        return await model.postprocess(await model.predict(await model.preprocess(payload)))

    return asyncio.run(run())


def test_v2_json_and_raw_binary_inputs_answer_alike(classifier):
    json_input = InferInput("symptoms", [1], "BYTES", [FUNGAL])
    raw_input = InferInput("symptoms", [1], "BYTES")
    raw_input.set_data_from_numpy(np.array([FUNGAL], dtype=np.object_), binary_data=True)
    answers = []
    for tensor in (json_input, raw_input):
        request = InferRequest(model_name=classifier.name, infer_inputs=[tensor], request_id="x")
        response = _answer(classifier, request)
        assert response.id == "x"
        answers.append({o.name: o.data for o in response.outputs})
    assert answers[0] == answers[1]
    assert answers[0]["disease"][0] == "Fungal infection"


def test_v1_dicts_and_bodies_without_a_json_content_type(classifier):
    for payload in ({"instances": [["itching", "skin rash"]]}, b'{"instances": ["fever, cough"]}'):
        predictions = _answer(classifier, payload)["predictions"]
        assert len(predictions) == 1 and predictions[0]["diseases"]
    with pytest.raises(RequestRejected):
        _answer(classifier, b"{not json")


def _noting_decode_threads(model: DiseaseClassifier, answer: Callable[[], Any]):
    """(``answer()``, the name of the thread of each ``model.decode`` call made for it)."""
    threads = []
    decode = model.decode

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return decode(*args, **kwargs)

    model.decode = spy
    try:
        return answer(), threads
    finally:
        del model.decode


def _answer_noting_decode_threads(model: DiseaseClassifier, request: InferRequest):
    """(the answer of KServe's path, the thread of each ``decode`` call made for it)."""
    return _noting_decode_threads(model, lambda: _answer(model, request))


def test_large_requests_are_decoded_off_the_event_loop(classifier):
    ids = [s.id for s in vocabulary().selectable]
    request = InferRequest(
        model_name=classifier.name,
        infer_inputs=[InferInput("symptoms", [300], "BYTES", [",".join(ids)] * 300)],
    )
    response, threads = _answer_noting_decode_threads(classifier, request)
    assert response.outputs[0].shape == [300, contract.DEFAULT_TOP_K]
    assert threads and threads[0].startswith(f"{classifier.name}-large")


@pytest.mark.parametrize("misspelt", [INLINE_FUZZY_MATCHES, INLINE_FUZZY_MATCHES + 1])
def test_a_few_misspelt_names_are_matched_on_the_event_loop(classifier, misspelt):
    """Up to INLINE_FUZZY_MATCHES misspelt names are matched where the request arrives; one
    more and it is decoded again, from the start, in the worker: the same answer either way."""
    text = ", ".join(MISSPELT[:misspelt])
    request = InferRequest(
        model_name=classifier.name, infer_inputs=[InferInput("symptoms", [1], "BYTES", [text])]
    )
    response, threads = _answer_noting_decode_threads(classifier, request)
    on_loop = threading.main_thread().name
    if misspelt <= INLINE_FUZZY_MATCHES:
        assert threads == [on_loop]
    else:
        assert threads[0] == on_loop and threads[1].startswith(f"{classifier.name}-large")
    query = decoding.decode_inputs(names(text), None, classifier.n_classes)
    assert len(query.present[0]) == misspelt
    assert response.outputs[0].data == classifier.rank_columns(query, record=False).diseases


def test_where_to_decode_is_decided_without_reading_numbers():
    """Only text costs decoding time worth the worker thread: the check counts the BYTES
    elements and never walks a numeric tensor (64 gRPC FP32 rows are 8,448 elements)."""

    class Unread(list):
        def __iter__(self):
            raise AssertionError("a numeric tensor's elements were read")

    shape = [64, contract.N_SYMPTOMS]
    vector = Tensor("input-0", "FP32", shape, Unread([0.0] * shape[0] * shape[1]))
    names_tensor = Tensor("symptoms", "BYTES", [2], ["cough", b"high_fever"])
    assert text_chars([vector]) == 0
    assert text_chars([names_tensor, vector]) == len("cough") + len(b"high_fever")


@pytest.mark.parametrize(("rows", "on_loop"), [(64, True), (400, False)])
def test_the_fast_path_reads_vectors_where_their_size_says(classifier, rows, on_loop):
    """64 patients' 0/1 vectors over REST (~17 KB of JSON, past INLINE_CHARS, no text) are
    parsed and decoded on the event loop; a body past INLINE_BODY_BYTES (400 patients, ~106 KB)
    in the worker thread. The same answers either way."""
    rng = np.random.default_rng(rows)
    X = np.zeros((rows, contract.N_SYMPTOMS), dtype=int)
    for row in X:
        row[rng.choice(contract.N_SYMPTOMS, 3, replace=False)] = 1
    body = json.dumps({"inputs": [contract.VECTOR.tensor(list(X.shape), X.ravel().tolist())]})
    assert (len(body) > INLINE_BODY_BYTES) is not on_loop and len(body) > INLINE_CHARS
    fast = FastPath([classifier])
    (status, answer), threads = _noting_decode_threads(
        classifier, lambda: asyncio.run(fast.answer(classifier, body.encode()))
    )
    assert status == 200
    on = threading.main_thread().name
    assert threads == [on] if on_loop else threads[0].startswith(f"{classifier.name}-large")
    query = decoding.decode_inputs(
        [Tensor("input-0", "INT64", list(X.shape), X.ravel().tolist())], None, 41
    )
    disease = next(o for o in json.loads(answer)["outputs"] if o["name"] == "disease")
    assert disease["data"] == classifier.rank_columns(query, record=False).diseases


# -- loading ----------------------------------------------------------------------------------
def test_a_model_file_that_is_not_the_registered_one_is_refused(trained_model_dir, tmp_path):
    digest = model_sha256(trained_model_dir)
    model = DiseaseClassifier("m", str(trained_model_dir), sha256=digest)
    assert model.load()
    tampered = shutil.copytree(trained_model_dir, tmp_path / "m")
    with (tampered / "model.joblib").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(SymptomDxError) as info:
        DiseaseClassifier("m", str(tampered), sha256=digest).load()
    assert "refusing to unpickle" in str(info.value) and "\n" not in str(info.value)


def test_a_model_saved_before_the_training_reference_still_loads(trained_model_dir, tmp_path):
    old = shutil.copytree(trained_model_dir, tmp_path / "old")
    meta = json.loads((old / METADATA_FILE).read_text())
    del meta[TRAINING_REFERENCE]
    (old / METADATA_FILE).write_text(json.dumps(meta))
    model = DiseaseClassifier("old-model", str(old))
    assert model.load() and model.classifier.reference is None
    from prometheus_client import REGISTRY

    share = REGISTRY.get_sample_value(
        "disease_classifier_training_symptom_share", {"model_name": "old-model", "symptom": "cough"}
    )
    assert share is None
