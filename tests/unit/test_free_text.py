"""The free-text symptom parser (issue 20): lay terms, negation, lists as before, typos,
Korean spacing, the test sets' scores."""

from __future__ import annotations

import csv
import logging
import threading

import pytest
from testkit import REPO

from symptom_dx.free_text import (
    Lexicon,
    ParsedSymptoms,
    Pattern,
    lay_term_phrases,
    parse_symptoms,
    read_rows,
    score,
)
from symptom_dx.i18n import translations
from symptom_dx.vocabulary import vocabulary

DATA = REPO / "data" / "free_text"


def parsed(text: str, language: str | None = None) -> tuple[set[str], set[str]]:
    p = parse_symptoms(text, language)
    return set(p.present), set(p.absent)


# -- the lay-term data: every entry alone means its ids ---------------------------------------


@pytest.mark.parametrize(
    ("language", "phrase", "ids"),
    [(lang, phrase, ids) for lang in ("en", "ko") for phrase, ids in lay_term_phrases(lang)],
)
def test_each_lay_term_alone_parses_to_its_ids(language, phrase, ids):
    p = parse_symptoms(phrase.lstrip("="), language)
    assert set(p.present) == set(ids)
    assert p.absent == ()


@pytest.mark.parametrize("language", ["en", "ko"])
def test_lay_terms_name_known_ids_and_never_the_duplicate_column(language):
    ids = set(vocabulary().ids) - vocabulary().optional_ids
    rows = lay_term_phrases(language)
    assert len(rows) > 300
    assert {sid for _, row_ids in rows for sid in row_ids} <= ids


def test_lay_term_files_have_their_columns():
    for name in ("en.csv", "ko.csv"):
        path = REPO / "src/symptom_dx/resources/lay_terms" / name
        with path.open(encoding="utf-8") as f:
            assert csv.DictReader(f).fieldnames == ["phrase", "id"]


def test_two_lay_terms_that_read_alike_must_mean_the_same():
    with pytest.raises(ValueError, match="read the same"):
        Lexicon(
            [
                Pattern(("stomach", "hurt"), ("stomach_pain",), phrase="stomach hurts"),
                Pattern(("stomach", "hurt"), ("belly_pain",), phrase="stomach hurting"),
            ]
        )


# -- today's list inputs read as before ---------------------------------------------------------


def test_lists_as_vocabulary_understand_reads_them():
    text = "itchy skin, rash and fever; banana; cold hands and feet"
    p = parse_symptoms(text)
    ids, missed = vocabulary().understand(text)
    assert list(p.present) == ids == ["itching", "skin_rash", "high_fever", "cold_hands_and_feets"]
    assert list(p.not_understood) == missed == ["banana"]
    p = parse_symptoms("itching, skin_rash")
    assert p.present == ("itching", "skin_rash")


def test_lists_as_translations_understand_reads_them():
    text = "가려움증, 피부 발진, 속쓰림, rash and fever, 뭔가 이상함"
    p = parse_symptoms(text)
    ids, missed = translations("ko").understand(text)
    assert list(p.present) == ids == ["itching", "skin_rash", "acidity", "high_fever"]
    assert list(p.not_understood) == missed == ["뭔가 이상함"]
    p = parse_symptoms("itchy skin, rash, purple elbows")
    assert p.present == ("itching", "skin_rash")
    assert p.not_understood == ("purple elbows",)


@pytest.mark.parametrize(
    "spelling",
    sorted(
        {s for sym in vocabulary().symptoms for s in (sym.id, sym.header, sym.label)}
        | set(vocabulary().aliases)
    ),
)
def test_every_id_label_and_alias_reads_as_vocabulary_understand_does(spelling):
    p = parse_symptoms(spelling)
    assert list(p.present) == vocabulary().understand(spelling)[0]
    assert p.absent == ()


@pytest.mark.parametrize("sid", sorted(translations("ko").symptoms))
def test_every_korean_label_reads_as_translations_understand_does(sid):
    ko = translations("ko")
    label = ko.symptoms[sid]
    expected = ko.understand(label)[0]
    if expected == ["fluid_overload_duplicate"]:
        # The one deliberate difference: a name never selects the unused duplicate column
        # (the vocabulary's rule); Translations.understand returns it for "체액 과다".
        expected = ["fluid_overload"]
    assert list(parse_symptoms(label).present) == expected


# -- negation and its scope ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        ("no fever but a sore throat", {"throat_irritation"}, {"high_fever"}),
        ("without diarrhoea", set(), {"diarrhoea"}),
        ("not vomiting", set(), {"vomiting"}),
        ("I don't have a cough", set(), {"cough"}),
        ("i dont have a cough but my chest hurts", {"chest_pain"}, {"cough"}),
        ("never had chest pain", set(), {"chest_pain"}),
        ("neither fever nor cough, just a runny nose", {"runny_nose"}, {"high_fever", "cough"}),
        ("no fever, chills or cough", set(), {"high_fever", "chills", "cough"}),
        ("no fever and a headache", {"headache"}, {"high_fever"}),
        ("no nausea however i have vomited twice", {"vomiting"}, {"nausea"}),
        ("headache, no fever, cough", {"headache", "cough"}, {"high_fever"}),
        ("my fever is gone but i still cough", {"cough"}, {"high_fever"}),
        ("fever: no", set(), {"high_fever"}),
        # phrases that only look negative
        ("can't stop coughing", {"cough"}, set()),
        ("no appetite", {"loss_of_appetite"}, set()),
        ("my nose won't stop running", {"runny_nose"}, set()),
        ("i'm not short of breath", set(), {"breathlessness"}),
        (
            "열은 없는데 목이 따갑고 콧물이 나요",
            {"throat_irritation", "runny_nose"},
            {"high_fever"},
        ),
        ("토하지는 않는데 속이 메스꺼워요", {"nausea"}, {"vomiting"}),
        ("기침은 안 해요", set(), {"cough"}),
        ("설사는 없어요", set(), {"diarrhoea"}),
        ("어지럽지 않아요", set(), {"dizziness"}),
        ("머리 안 아파요", set(), {"headache"}),
        ("안 토해요", set(), {"vomiting"}),
        ("열, 기침 없어요", set(), {"high_fever", "cough"}),
        ("구토나 설사는 없고 미열만 있어요", {"mild_fever"}, {"vomiting", "diarrhoea"}),
        ("열 없이 기침만 나요", {"cough"}, {"high_fever"}),
        ("열은 다 내렸는데 기침이 아직 나요", {"cough"}, {"high_fever"}),
        ("열없고 기침만 해요", {"cough"}, {"high_fever"}),
        ("rash는 없어요", set(), {"skin_rash"}),
        ("negative for fever", set(), {"high_fever"}),
        ("fever w/o chills", {"high_fever"}, {"chills"}),
        ("No I have a headache", {"headache"}, set()),
        ("no i don't have a fever", set(), {"high_fever"}),
        ("I haven't had any fever or chills", set(), {"high_fever", "chills"}),
        ("열은 안 나요", set(), {"high_fever"}),
        ("콧물 안남", set(), {"runny_nose"}),
        ("열나지 않아요", set(), {"high_fever"}),
        ("배는 안 아파요", set(), {"belly_pain"}),
        ("어지럽거나 토하지는 않아요", set(), {"dizziness", "vomiting"}),
        ("목은 안 아프고 기침만 해요", {"cough"}, {"throat_irritation"}),
        # looks negative, is not
        ("입맛이 없어요", {"loss_of_appetite"}, set()),
        ("기침이 멈추질 않아요", {"cough"}, set()),
        ("소화가 안 돼요", {"indigestion"}, set()),
        ("기침 때문에 잠을 못 자요", {"cough"}, set()),
    ],
)
def test_negation(text, present, absent):
    assert parsed(text) == (present, absent)


@pytest.mark.parametrize("noun", ["열", "기침", "콧물", "설사", "두통", "가래", "재채기"])
@pytest.mark.parametrize(
    "frame", ["{}은 안 나요", "{} 안남", "{}은 없어요", "{} 없음", "{}도 안 해요"]
)
def test_korean_negation_frames(noun, frame):
    p = parse_symptoms(frame.format(noun))
    assert p.present == ()
    assert len(p.absent) == 1


@pytest.mark.parametrize("language", ["en", "ko"])
def test_pseudo_negations_are_specific(language):
    """A cue that "only looks negative" swallows a negation: it must say more than the negation
    and a light verb ("안 나아요" read as 안 + 나다 once swallowed every "열은 안 나요")."""
    from symptom_dx.free_text import english_resources, read_cues
    from symptom_dx.free_text_ko import LIGHT_VERBS, korean_resources

    cues = read_cues(language)
    lexicon = english_resources().lexicon if language == "en" else korean_resources().lexicon
    bare = set(cues["negation"]) | set(cues.get("negation_adverb", ())) | LIGHT_VERBS
    bare |= {"do", "have", "can", "will"}
    for p in lexicon.patterns:
        if p.kind == "pseudo":
            assert set(p.keys) - bare, p.phrase


def test_a_symptom_denied_anywhere_is_never_reported_present():
    p = parse_symptoms("fever yesterday, no fever today")
    assert "high_fever" not in p.present
    assert p.absent == ("high_fever",)


# -- fever, typos, spacing, languages --------------------------------------------------------------


def test_plain_fever_is_high_fever_and_yields_to_a_mild_one():
    assert parsed("fever") == ({"high_fever"}, set())
    assert parsed("a slight fever") == ({"mild_fever"}, set())
    assert parsed("열이 37.5도 정도 미열이 있어요") == ({"mild_fever"}, set())
    assert parsed("열이 나요") == parsed("열나요") == ({"high_fever"}, set())


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("fevr and cuogh", {"high_fever", "cough"}),
        ("Vomitting, diarhea, stomache ache", {"vomiting", "diarrhoea", "stomach_pain"}),
        ("severe headach and nausia", {"headache", "nausea"}),
        ("skin rsh", {"skin_rash"}),  # a list item, matched as a whole
        ("skin rashh", {"skin_rash"}),
    ],
)
def test_misspellings(text, present):
    assert parsed(text) == (present, set())


@pytest.mark.parametrize(
    "typo",
    [
        "itthing",  # "itching" (itching) or "pitting" (small dents in nails): both 85.7
        "sfeezing",  # "sneezing" (sneezing) or "freezing" (chills): both 87.5
    ],
)
def test_a_typo_between_two_symptoms_is_refused_not_guessed(typo):
    from symptom_dx.free_text import correct_word

    assert correct_word(typo) is None
    p = parse_symptoms(typo)
    assert p.present == ()
    assert p.not_understood == (typo,)
    assert parse_symptoms(typo.replace("tth", "tch").replace("sf", "sn")).present != ()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("머리아프고 열나요", "머리가 아프고 열이 나요"),
        ("콧물나요", "콧물이 나요"),
        ("기침안해요", "기침은 안 해요"),
        ("소변자주봐요", "소변을 자주 봐요"),
        ("배아파요", "배가 아파요"),
        ("목아프고 콧물나요", "목이 아프고 콧물이 나요"),
    ],
)
def test_korean_spacing_variants_read_alike(a, b):
    assert parsed(a) == parsed(b)
    assert parsed(a) != (set(), set())


def test_mixed_korean_and_english():
    assert parsed("가려움증, rash and fever") == ({"itching", "skin_rash", "high_fever"}, set())
    assert parsed("열이 나고 no cough") == ({"high_fever"}, {"cough"})


def test_language_is_detected_or_chosen():
    assert parsed("머리가 아파요", "ko") == ({"headache"}, set())
    assert parsed("headache", "ko") == ({"headache"}, set())
    assert parse_symptoms("머리가 아파요", "en").present == ()  # "en" never loads Kiwi
    with pytest.raises(ValueError, match="unsupported language"):
        parse_symptoms("fever", "fr")


@pytest.mark.parametrize("text", ["", "   ", ",,;", "\n"])
def test_empty_text_gives_an_empty_result(text):
    assert parse_symptoms(text) == ParsedSymptoms()


def test_text_is_not_logged(caplog):
    with caplog.at_level(logging.DEBUG):
        parse_symptoms("I have a headache and 기침 nobody should log")
        parse_symptoms("머리가 아파요 비밀")
    assert not [r for r in caplog.records if "비밀" in r.getMessage() or "nobody" in r.getMessage()]


def test_one_kiwi_serves_many_threads():
    texts = [
        "머리가 아프고 열이 나요",
        "열은 없는데 목이 따갑고 콧물이 나요",
        "토하지는 않는데",
    ] * 20
    expected = [parse_symptoms(t) for t in texts]
    got: list[ParsedSymptoms | None] = [None] * len(texts)

    def work(k: int) -> None:
        for i in range(k, len(texts), 6):
            got[i] = parse_symptoms(texts[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


# -- the test sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_test_set_is_well_formed(language):
    rows = read_rows(DATA / f"{language}.tsv")
    assert list(rows[0]) == ["split", "text", "present", "absent"]
    assert len(rows) >= 66
    heldout = [r for r in rows if r["split"] == "heldout"]
    assert {r["split"] for r in rows} == {"dev", "heldout"}
    assert len(heldout) * 3 == len(rows)
    assert sum(bool(r["absent"]) for r in rows) * 4 >= len(rows)  # negations in a quarter
    ids = set(vocabulary().ids)
    for r in rows:
        named = [i for col in ("present", "absent") for i in r[col].split(";") if i]
        assert set(named) <= ids, r
        assert not set(r["present"].split(";")) & set(filter(None, r["absent"].split(";")))


@pytest.mark.parametrize("language", ["en", "ko"])
def test_dev_split_f1(language):
    s = score(read_rows(DATA / f"{language}.tsv", "dev"))
    assert s["f1"] >= 0.90, s
    assert s["denied_reported_present"] == 0, s


@pytest.mark.parametrize("language", ["en", "ko"])
def test_no_denied_symptom_reported_present_on_any_row(language):
    s = score(read_rows(DATA / f"{language}.tsv"))
    assert s["denied_reported_present"] == 0, s


def test_score_counts_what_it_should():
    rows = [
        {
            "text": "no fever but a sore throat",
            "present": "throat_irritation",
            "absent": "high_fever",
        },
        {"text": "headache", "present": "headache;high_fever", "absent": ""},
        {"text": "fever and cough", "present": ["high_fever"], "absent": ["cough"]},
    ]
    s = score(rows)
    assert (s["tp"], s["fp"], s["fn"]) == (3, 1, 1)
    assert s["denied_reported_present"] == 1
    assert s["exact_sentence_accuracy"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(0.75)
