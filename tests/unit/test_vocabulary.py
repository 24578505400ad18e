import random
import re

import pytest

from symptom_dx import free_text
from symptom_dx import vocabulary as vocabulary_module
from symptom_dx.errors import EmptySymptomsError, UnknownSymptomError
from symptom_dx.vocabulary import compact_key, split_symptom_list, vocabulary


def test_vocabulary_has_132_unique_ids_in_header_order():
    v = vocabulary()
    assert v.size == 132
    assert len(set(v.ids)) == 132
    assert [s.position for s in v.symptoms] == list(range(132))
    assert all(" " not in s for s in v.ids)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("spotting_ urination", "spotting_urination"),
        ("foul_smell_of urine", "foul_smell_of_urine"),
        ("foul_smell_ofurine", "foul_smell_of_urine"),  # the severity table's spelling
        ("dischromic _patches", "dischromic_patches"),
        ("Skin Rash", "skin_rash"),
        ("SKIN-RASH", "skin_rash"),
        ("skin rashh", "skin_rash"),  # minor misspelling
        ("diarrhea", "diarrhoea"),
        ("Cold hands and feet", "cold_hands_and_feets"),  # the display label
        ("toxic look typhos", "toxic_look_(typhos)"),
        ("fluid_overload", "fluid_overload"),
        ("itchy skin", "itching"),  # an alias
    ],
)
def test_normaliser_accepts_variants(raw, expected):
    assert vocabulary().normalise(raw) == expected


def test_fluid_overload_names_the_used_column():
    v = vocabulary()
    assert v.position("fluid_overload") == 117
    assert v.position("fluid_overload_duplicate") == 45
    assert v.duplicates == {45: 117}
    assert "fluid_overload_duplicate" not in {s.id for s in v.selectable}
    assert v.lookup("fluid_overload_duplicate") == "fluid_overload"


def test_unknown_symptom_error_names_it_and_close_matches():
    with pytest.raises(UnknownSymptomError) as e:
        vocabulary().resolve(["itching", "hedache x", "bananas"])
    message = str(e.value)
    assert "'hedache x'" in message and "headache" in message
    assert "'bananas'" in message
    assert set(e.value.unknown) == {"hedache x", "bananas"}


def test_ambiguous_or_far_names_are_not_guessed():
    assert vocabulary().lookup("pain") is None
    assert vocabulary().lookup("") is None


def test_resolve_dedupes_and_keeps_order():
    assert vocabulary().resolve(["Itching", "skin rash", "itching"]) == ["itching", "skin_rash"]


def test_names_as_written_resolve_at_once_and_alike():
    """``resolve_verbatim`` answers as ``resolve`` for every spelling exactly as the vocabulary
    writes it (ids, headers, labels, aliases; the unused duplicate column's too), and leaves
    every other list (another case or spacing, a misspelling, nothing) to it."""
    v = vocabulary()
    spellings = [x for s in v.symptoms for x in (s.id, s.header, s.label)] + list(v.aliases)
    for spelling in spellings:
        assert v.resolve_verbatim([spelling]) == v.resolve([spelling]), spelling
    assert v.resolve_verbatim(["itching", "skin_rash", "itching"]) == ["itching", "skin_rash"]
    assert v.resolve_verbatim(["fluid_overload_duplicate"]) == ["fluid_overload"]
    for names in (["ITCHING"], ["skin  rash"], ["itching", "hedache"], []):
        assert v.resolve_verbatim(names) is None, names


def test_empty_list_is_an_error():
    with pytest.raises(EmptySymptomsError):
        vocabulary().parse(" , ,")


def test_free_text_reports_what_was_understood():
    ids, missed = vocabulary().understand("itchy skin, rash and fever; banana; cold hands and feet")
    assert ids == ["itching", "skin_rash", "high_fever", "cold_hands_and_feets"]
    assert missed == ["banana"]


def test_helpers():
    assert compact_key("Foul smell_of-urine") == "foulsmellofurine"
    assert split_symptom_list("a, b;c\n d,,") == ["a", "b", "c", "d"]


def test_lists_split_at_runs_of_commas_semicolons_and_newlines():
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice("ab ,;\n\r\t") for _ in range(rng.randint(0, 12)))
        expected = [p.strip() for p in re.split(r"[,;\n]+", text) if p.strip()]
        assert split_symptom_list(text) == expected, repr(text)


def test_inexact_names_spend_a_budget_and_exact_ones_do_not():
    from symptom_dx.vocabulary import FuzzyBudget, TooManyInexactNames

    v = vocabulary()
    budget = FuzzyBudget(2)
    assert v.resolve(["Itching", "skin rash", "itchy skin"], budget) == ["itching", "skin_rash"]
    assert budget.spent == 0
    assert v.resolve(["skin rashh"], budget) == ["skin_rash"] and budget.left == 1
    assert v.needs_fuzzy("headache x") and not v.needs_fuzzy("HEADACHE") and not v.needs_fuzzy("")
    with pytest.raises(TooManyInexactNames, match="more than 2"):
        v.resolve(["hedache", "fevr"], budget)
    with pytest.raises(TooManyInexactNames):  # refused before any approximate matching
        v.check_budget([["hedache", "fevr", "cogh"]], FuzzyBudget(2))
    v.check_budget([["itching"] * 10], FuzzyBudget(2))


def test_what_people_type_is_kept_between_calls_only_as_single_words_and_found_symptoms():
    # Free text and unknown names are health data: the look-ups of a request keep none of them
    # (a corrected misspelling is kept: the same few come again; single words are, too).
    vocab = vocabulary()
    sentence = "my xylophone lessons give me a headache"
    short_text = "zorbly wibbles"
    mixed = "itching — 임신 중이라 약을 못 먹어요"  # reduces to a known key: "itching"
    # scripts written without spaces: runs the tokenizer calls words, maybe whole sentences
    unspaced = ("我头很痛而且从昨天开始发高烧了", "ฉันปวดหัวมากและมีไข้สูงตั้งแต่เมื่อวานนี้")
    word_caches = (free_text._expand_word, free_text._english_word)  # every per-word cache
    free_text.parse_symptoms("a fever")  # the reader's own phrases are read (and kept) first
    words_before = [f.cache_info().currsize for f in word_caches]
    for text in unspaced:
        free_text.parse_symptoms(text)
    assert [f.cache_info().currsize for f in word_caches] == words_before
    for text in (sentence, short_text, mixed):
        free_text.parse_symptoms(text)
        free_text.fuzzy_phrase(text)
        vocab.exact(text)
        vocab.lookup(text)
        vocab.needs_fuzzy(text)
        vocab.understand(text)
        if text != mixed:
            with pytest.raises(UnknownSymptomError):
                vocab.resolve([text])
    assert vocab.lookup("headach") == "headache" and free_text.fuzzy_phrase("skin rsh")
    kept = {
        *(key for _, key in vocabulary_module._fuzzy_lookup.found),
        *(key for (key,) in free_text._fuzzy_phrase_key.found),
    }
    for text in (sentence, short_text):
        assert not {text, compact_key(text)} & kept
    assert mixed not in kept  # only what it reduces to, a symptom's own name, may be
    assert {"headach", "skinrsh"} <= kept
