"""Translations: complete against the vocabulary and catalog, consistent, and sensible."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from symptom_dx.diseases import disease_catalog
from symptom_dx.i18n import LANGUAGES, placeholders, translations
from symptom_dx.vocabulary import vocabulary

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _raw(language):
    path = resources.files("symptom_dx.resources").joinpath("i18n").joinpath(f"{language}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_english_labels_come_from_the_domain_package():
    en = translations("en")
    assert set(_raw("en")) == {"language", "name", "ui"}  # no symptom or disease lists of its own
    for s in vocabulary().symptoms:
        assert en.symptom(s.id) == s.label
    for name in disease_catalog().names:
        assert en.disease(name) == name


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_other_language_is_complete(language):
    raw = _raw(language)
    assert set(raw["symptoms"]) == set(vocabulary().ids)  # all 132, the duplicate column too
    assert set(raw["diseases"]) == set(disease_catalog().names)  # all 41
    en_ui = _raw("en")["ui"]
    assert set(raw["ui"]) == set(en_ui)
    for key, text in raw["ui"].items():
        assert placeholders(text) == placeholders(en_ui[key]), key
        assert text.strip() or not en_ui[key].strip() or key == "data_language_note", key
    labels = [v for v in raw["symptoms"].values()]
    assert all(v.strip() == v and v for v in labels)
    assert len(set(labels)) == len(labels), "two symptoms share a label"
    names = list(raw["diseases"].values())
    assert len(set(names)) == len(names), "two diseases share a name"


def test_korean_reads_as_korean():
    ko = translations("ko")
    assert ko.symptom("itching") == "가려움증"
    assert ko.symptom("skin_rash") == "피부 발진"
    assert ko.symptom("high_fever") == "고열"
    assert ko.disease("Fungal infection") == "진균 감염"
    assert ko.disease("GERD") == "위식도 역류 질환"
    assert all(HANGUL.search(ko.symptom(s)) for s in vocabulary().ids)
    assert all(HANGUL.search(ko.disease(n)) for n in disease_catalog().names)
    # The English-only data is said to be English, in Korean.
    assert "영어" in ko.text("data_language_note")


def test_text_fills_placeholders_and_falls_back_to_english():
    ko = translations("ko")
    assert ko.text("thin_few", count=2, minimum=3).startswith("증상을 2개")
    assert translations("en").text("probability", percent=42) == "42%"
    with pytest.raises(KeyError):
        translations("en").text("no_such_key")
    with pytest.raises(ValueError, match="unsupported language"):
        translations("fr")


def test_free_text_in_korean_or_english():
    ko = translations("ko")
    ids, missed = ko.understand("가려움증, 피부 발진, 속쓰림, rash and fever, 뭔가 이상함")
    assert ids == ["itching", "skin_rash", "acidity", "high_fever"]
    assert missed == ["뭔가 이상함"]
    ids, missed = translations("en").understand("itchy skin, rash, purple elbows")
    assert ids == ["itching", "skin_rash"]
    assert missed == ["purple elbows"]
