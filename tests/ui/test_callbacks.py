"""The page's logic as plain functions, with the v2 endpoint answered in this process."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from pipelines.local_stack.services import LOOPBACK, free_port
from symptom_dx import contract
from symptom_dx.i18n import translations
from symptom_dx.vocabulary import vocabulary
from ui import callbacks
from ui.callbacks import EMPTY, OK, UNAVAILABLE
from ui.client import ModelClient

SKIN = ["itching", "skin_rash", "nodal_skin_eruptions"]


def test_picker_shows_display_names_of_the_domain_vocabulary():
    choices = callbacks.picker_choices("en")
    assert len(choices) == len(vocabulary().selectable) == 131
    assert ("Itching", "itching") in choices
    assert all("_" not in label for label, _ in choices)
    # shortest first, so that a whole name typed into the picker is its first match
    labels = [label for label, _ in choices]
    assert labels.index("Itching") < labels.index("Internal itching")
    assert [len(label) for label in labels] == sorted(len(label) for label in labels)
    ko = dict((sid, label) for label, sid in callbacks.picker_choices("ko"))
    assert ko["skin_rash"] == "피부 발진"


@pytest.mark.integration  # the model server reads the free text
def test_free_text_reports_what_was_and_was_not_understood(served_client):
    chosen, denied, message, left = callbacks.add_free_text(
        served_client, "itchy skin, rash, purple elbows", ["cough"], (), "en"
    )
    assert chosen == ["cough", "itching", "skin_rash"]
    assert denied == () and left == ""
    assert "Understood: Itching, Skin rash" in message
    assert 'Not understood: "purple elbows"' in message
    chosen, denied, message, _ = callbacks.add_free_text(served_client, "고열, 기침", [], (), "ko")
    assert chosen == ["high_fever", "cough"]
    assert "인식한 증상: 고열, 기침" in message
    for blank in ("   ", ""):
        _, _, message, _ = callbacks.add_free_text(served_client, blank, [], (), "en")
        assert message == "No known symptom found in the text."
    _, _, message, _ = callbacks.add_free_text(served_client, "purple elbows", [], (), "en")
    assert message == 'Not understood: "purple elbows". Try other words or pick from the list.'


@pytest.mark.integration  # the model server reads the free text
def test_free_text_sentences_with_negation_add_and_deny(served_client):
    text = "I've been throwing up and have a bad headache but no fever"
    # a fever picked before is taken out of the picker and kept as denied
    chosen, denied, message, _ = callbacks.add_free_text(
        served_client, text, ["high_fever", "cough"], (), "en"
    )
    assert chosen == ["cough", "vomiting", "headache"]
    assert denied == ("high_fever",)
    assert message.splitlines()[0] == "Understood: Vomiting, Headache."
    assert "You said you do not have: High fever." in message
    # Korean sentences, the labels in the page's language (which is no more than a hint)
    for language, understood, no in (
        ("ko", "인식한 증상: 두통, 구토.", "없다고 한 증상: 고열."),
        ("en", "Understood: Headache, Vomiting.", "You said you do not have: High fever."),
    ):
        chosen, denied, message, _ = callbacks.add_free_text(
            served_client, "머리가 아프고 토했어요, 열은 없어요", [], (), language
        )
        assert (chosen, denied) == (["headache", "vomiting"], ("high_fever",))
        assert understood in message and no in message
    # saying it after all undoes the denial; picking it again is seen by diagnose
    chosen, denied, _, _ = callbacks.add_free_text(
        served_client, "I do have a fever", chosen, denied, "en"
    )
    assert (chosen, denied) == (["headache", "vomiting", "high_fever"], ())
    _, denied, _, _ = callbacks.add_free_text(served_client, "no cough", [], ("high_fever",), "en")
    assert denied == ("high_fever", "cough")


@pytest.mark.integration  # the model server reads the free text
def test_free_text_is_bounded_and_escaped(served_client):
    long = "headache " + "x" * 5000 + " no fever"
    chosen, denied, _, _ = callbacks.add_free_text(served_client, long, [], (), "en")
    assert chosen == ["headache"] and denied == ()  # past MAX_FREE_TEXT nothing is read
    _, _, message, _ = callbacks.add_free_text(served_client, "headache, zz_qx#1", [], (), "en")
    assert '"zz\\_qx\\#1"' in message  # markdown in what was typed is shown as typed


def test_free_text_without_the_model_server_keeps_the_text_and_says_so():
    """The page reads free text through the model server: when it is down, nothing is lost."""
    with ModelClient(f"http://{LOOPBACK}:{free_port()}", timeout=2.0) as down:
        chosen, denied, message, left = callbacks.add_free_text(
            down, "no fever but a sore throat", ["cough"], ("vomiting",), "ko"
        )
    assert (chosen, denied, left) == (["cough"], ("vomiting",), "no fever but a sore throat")
    assert message == translations("ko").text("server_down")  # nothing in it to escape


@pytest.mark.integration  # the model server reads the free text
def test_denied_symptoms_reach_the_model_as_absent(v2_transport, knowledge, served_client):
    bodies = []

    def recording(request):
        bodies.append(json.loads(request.content or b"{}"))
        return v2_transport.handle_request(request)

    with ModelClient("http://model-server", transport=httpx.MockTransport(recording)) as client:
        chosen, denied, _, _ = callbacks.add_free_text(
            served_client,
            "I've been throwing up and have a bad headache but no fever",
            [],
            (),
            "en",
        )
        outcome = callbacks.diagnose(client, knowledge, chosen, callbacks.denied_symptoms(denied))
        assert outcome.status == OK and outcome.absent == ("high_fever",)
        inputs = {i["name"]: i["data"] for i in bodies[-1]["inputs"]}
        assert contract.split_list(inputs["symptoms"][0]) == ("vomiting", "headache")
        assert contract.split_list(inputs["absent"][0]) == ("high_fever",)
        notes = callbacks.render(outcome, knowledge).notes_html
        assert "You said you do not have: High fever" in notes
        # a denied symptom picked again is present, not absent
        again = callbacks.diagnose(client, knowledge, [*chosen, "high_fever"], denied)
        assert again.absent == () and "high_fever" in again.present
        assert "absent" not in {i["name"] for i in bodies[-1]["inputs"]}


def test_diagnose_ranks_and_compares(client, knowledge):
    outcome = callbacks.diagnose(client, knowledge, SKIN)
    assert outcome.status == OK
    assert outcome.thin == ()
    assert outcome.urgent == ()
    view = callbacks.render(outcome, knowledge, "en")
    assert next(iter(view.ranking)) == "Fungal infection"
    assert len(view.ranking) == 5
    assert view.status_html == ""
    assert view.ranking_html.count("<li") == 5
    assert '<span class="sdx-name">Fungal infection</span>' in view.ranking_html
    html = view.details_html
    assert html.count('class="sdx-card"') == 5
    first = html.split('class="sdx-card"')[1]
    assert "fungal infections occur" in first  # description from the table
    assert "Bath twice" in first  # precautions from the table
    supporting = re.search(r'class="sdx-supporting">(.*?)</p>', first).group(1)
    assert "Skin rash" in supporting and "Nodal skin eruptions" in supporting
    assert "Dyschromic patches" in re.search(r'class="sdx-missing">(.*?)</p>', first).group(1)
    assert view.show_question
    assert "Do you have **" in view.question_md


def test_answering_the_question_refines_the_result(client, knowledge):
    first = callbacks.diagnose(client, knowledge, ["skin_rash"])
    question = first.question
    assert question
    said_no = callbacks.answer(client, knowledge, first.present, first.absent, question, False)
    assert said_no.present == ("skin_rash",)
    assert said_no.absent == (question,)
    assert said_no.question not in (None, question)
    view = callbacks.render(said_no, knowledge, "en")
    assert "You said you do not have: " + vocabulary().label(question) in view.notes_html
    said_yes = callbacks.answer(client, knowledge, first.present, first.absent, question, True)
    assert said_yes.present == ("skin_rash", question)
    assert said_yes.absent == ()
    probs = [c.probability for c in said_yes.prediction.candidates]
    assert probs != [c.probability for c in first.prediction.candidates]


def test_thin_input_is_said_honestly(client, knowledge):
    outcome = callbacks.diagnose(client, knowledge, ["skin_rash"])
    assert "few" in outcome.thin
    view = callbacks.render(outcome, knowledge, "en")
    assert "Too little to tell these conditions apart" in view.notes_html
    assert "You gave 1 symptom(s)" in view.notes_html
    assert callbacks.thin_reasons(SKIN, outcome.prediction) != ()  # one rash is ambiguous


def test_severe_symptoms_bring_urgent_care_advice(client, knowledge):
    outcome = callbacks.diagnose(client, knowledge, ["chest_pain", "breathlessness", "sweating"])
    assert outcome.urgent == ("chest_pain",)
    view = callbacks.render(outcome, knowledge, "en")
    assert "Seek urgent care" in view.notes_html and "Chest pain" in view.notes_html
    ko = callbacks.render(outcome, knowledge, "ko")
    assert "119" in ko.notes_html and "가슴 통증(흉통)" in ko.notes_html


def test_nothing_picked_asks_for_a_symptom(client, knowledge):
    outcome = callbacks.diagnose(client, knowledge, [])
    assert outcome.status == EMPTY
    assert "Pick at least one symptom" in callbacks.render(outcome, knowledge, "en").status_html


def test_korean_rendering_keeps_the_data_english_and_says_so(client, knowledge):
    outcome = callbacks.diagnose(client, knowledge, SKIN)
    view = callbacks.render(outcome, knowledge, "ko")
    assert next(iter(view.ranking)) == "진균 감염"
    assert "피부 발진" in view.details_html
    assert "원본 데이터가 영어로만" in view.details_html
    assert "Bath twice" in view.details_html
    assert "**" in view.question_md and "증상이 있나요?" in view.question_md


def test_a_down_server_is_said_plainly_and_urgent_advice_stays(knowledge):
    with ModelClient(f"http://{LOOPBACK}:{free_port()}", timeout=1.0) as down:
        outcome = callbacks.diagnose(down, knowledge, ["coma", "high_fever"])
        assert outcome.status == UNAVAILABLE
        assert callbacks.server_status(down, "en").startswith("Model server: **not answering**")
    view = callbacks.render(outcome, knowledge, "en")
    assert "The model server is not answering right now" in view.status_html
    assert view.ranking is None and view.details_html == ""
    assert "Seek urgent care" in view.notes_html
    assert "모델 서버" in callbacks.render(outcome, knowledge, "ko").status_html
    assert "응답 없음" in callbacks.server_line(outcome, "ko")
    assert callbacks.server_line(callbacks.Outcome(), "en") is None


def test_the_page_recovers_when_the_server_is_back(client, knowledge):
    with ModelClient(f"http://{LOOPBACK}:{free_port()}", timeout=1.0) as down:
        assert callbacks.diagnose(down, knowledge, SKIN).status == UNAVAILABLE
    # the same submission against the live server: nothing is left over from the failure
    assert callbacks.diagnose(client, knowledge, SKIN).status == OK
    assert callbacks.server_status(client, "en") == "Model server: ready."


def test_percentages_never_round_to_certainty():
    assert callbacks._pct(0.9996) == ">99"
    assert callbacks._pct(0.0004) == "<1"
    assert callbacks._pct(0.5) == "50"
    assert callbacks._pct(1.0) == "100"


def test_the_page_keeps_only_what_it_offers():
    assert callbacks.chosen_symptoms(["itching", "zzqx marker", 5, None]) == ["itching"]
    assert callbacks.chosen_symptoms("itching") == []
    assert callbacks.chosen_symptoms(["fluid_overload_duplicate"]) == []
    assert callbacks.chosen_language("ko") == "ko"
    assert callbacks.chosen_language("zzqx") == callbacks.DEFAULT_LANGUAGE
    assert callbacks.chosen_language(["ko"]) == callbacks.DEFAULT_LANGUAGE


def test_symptoms_that_fit_no_pattern_are_said_to_fit_nothing(client, knowledge):
    """'None of these fits': the model server flags three symptoms no condition has together,
    and the page says so in the person's language instead of presenting a first place."""
    odd = ["itching", "chest_pain", "irregular_sugar_level"]
    outcome = callbacks.diagnose(client, knowledge, odd)
    assert outcome.prediction.out_of_pattern and "no_pattern" in outcome.thin
    for language in ("en", "ko"):
        view = callbacks.render(outcome, knowledge, language)
        assert translations(language).text("thin_no_pattern") in view.notes_html
    typical = callbacks.diagnose(
        client, knowledge, ["itching", "skin_rash", "nodal_skin_eruptions"]
    )
    assert not typical.prediction.out_of_pattern
