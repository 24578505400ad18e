"""The v2 REST client against the v2 endpoint answered in this process, and against servers
that fail (a closed port, one that never answers)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from pipelines.local_stack.services import LOOPBACK, free_port
from symptom_dx.diseases import disease_catalog
from symptom_dx.vocabulary import vocabulary
from ui.client import ModelClient, ModelServerRejected, ModelServerUnavailable

SKIN = ["itching", "skin_rash", "nodal_skin_eruptions"]


def test_infer_returns_a_ranked_differential(client):
    assert client.ready()
    prediction = client.infer(SKIN, top_k=5)
    assert len(prediction.candidates) == 5
    top = prediction.candidates[0]
    assert top.disease == "Fungal infection"
    probabilities = [c.probability for c in prediction.candidates]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.0001
    for c in prediction.candidates:
        assert c.disease in disease_catalog()
        assert set(c.supporting) <= set(SKIN)
        assert not set(c.missing) & set(SKIN)
        assert all(s in vocabulary() for s in c.missing)
    assert prediction.next_question in vocabulary()
    assert prediction.next_question not in SKIN


def test_denied_symptoms_change_the_ranking(client):
    before = client.infer(["skin_rash"], top_k=5)
    question = before.next_question
    after = client.infer(["skin_rash"], absent=[question], top_k=5)
    assert [c.probability for c in after.candidates] != [c.probability for c in before.candidates]
    assert after.next_question != question


def test_a_bad_request_passes_the_servers_message(client):
    with pytest.raises(ModelServerRejected) as e:
        client.infer(["third_elbow"])
    assert "third_elbow" in str(e.value)


def test_a_closed_port_is_unavailable():
    with ModelClient(f"http://{LOOPBACK}:{free_port()}", timeout=2.0) as c:
        assert not c.ready()
        with pytest.raises(ModelServerUnavailable, match="cannot reach the model server"):
            c.infer(SKIN)


def test_a_server_that_never_answers_times_out():
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        url = f"http://{LOOPBACK}:{listener.getsockname()[1]}"
        with ModelClient(url, timeout=0.5) as c:
            started = time.monotonic()
            with pytest.raises(ModelServerUnavailable, match=r"did not answer within 0\.5 s"):
                c.infer(SKIN)
            assert time.monotonic() - started < 3


def test_requests_follow_the_contract():
    from symptom_dx import contract

    sent = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(400, json={"error": "no"})

    client = ModelClient("http://m", transport=httpx.MockTransport(record))
    with client, pytest.raises(ModelServerRejected):
        client.infer(SKIN, absent=["cough"], top_k=3)
    assert sent == [contract.infer_request([SKIN], [["cough"]], 3)]
