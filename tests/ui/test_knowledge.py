"""The description, precaution and severity tables, read into canonical names and ids."""

from __future__ import annotations

import shutil

import pytest

from symptom_dx.diseases import disease_catalog
from symptom_dx.errors import DatasetError, SourceError
from symptom_dx.knowledge import KNOWLEDGE_FILES, URGENT_SEVERITY, load_knowledge
from symptom_dx.vocabulary import vocabulary


def test_every_disease_has_a_description_and_precautions(knowledge):
    for name in disease_catalog().names:
        assert len(knowledge.description(name)) > 40, name
        precautions = knowledge.precautions(name)
        assert 1 <= len(precautions) <= 4, name
        assert all(p and p == p.strip() and p[0].isupper() for p in precautions), precautions


def test_table_spellings_map_to_canonical_names(knowledge):
    # "Osteoarthristis", "hepatitis A", "Diabetes " and "Dimorphic hemmorhoids(piles)" in the files
    for name in ("Osteoarthritis", "Hepatitis A", "Diabetes", "Haemorrhoids (piles)"):
        assert knowledge.description(name), name
        assert knowledge.precautions(name), name
    # a blank precaution cell is dropped, not kept as ""
    assert knowledge.precautions("Allergy") == (
        "Apply calamine",
        "Cover area with bandage",
        "Use ice to compress itching",
    )


def test_every_symptom_has_a_severity(knowledge):
    for sid in vocabulary().ids:
        assert 1 <= knowledge.severity(sid) <= 7, sid
    assert knowledge.severity("foul_smell_of_urine") == 5  # spelt foul_smell_ofurine
    assert knowledge.severity("unknown_symptom") is None


def test_urgent_symptoms_are_the_top_of_the_scale(knowledge):
    urgent = {s for s in vocabulary().ids if knowledge.severity(s) >= URGENT_SEVERITY}
    severe = {"high_fever", "chest_pain", "weakness_in_limbs", "swelling_of_stomach", "coma"}
    assert urgent == severe
    assert knowledge.urgent(["itching", "chest_pain", "coma"]) == ["chest_pain", "coma"]
    assert knowledge.urgent(["itching", "skin_rash"]) == []


def _copy(data_dir, tmp_path):
    for name in KNOWLEDGE_FILES:
        shutil.copy(data_dir / name, tmp_path / name)
    return tmp_path


def test_a_missing_file_is_named(data_dir, tmp_path):
    folder = _copy(data_dir, tmp_path)
    (folder / "symptom_precaution.csv").unlink()
    with pytest.raises(SourceError, match=r"symptom_precaution\.csv"):
        load_knowledge(folder)


def test_unknown_and_absent_names_are_listed(data_dir, tmp_path):
    folder = _copy(data_dir, tmp_path)
    path = folder / "symptom_Description.csv"
    lines = path.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("Malaria,")]
    path.write_text("\n".join([*kept, "Space fever,Not a disease of the catalog."]) + "\n")
    with pytest.raises(DatasetError) as e:
        load_knowledge(folder)
    assert "unknown disease 'Space fever'" in e.value.problems
    assert "no row for disease 'Malaria'" in e.value.problems


def test_an_unknown_symptom_is_an_error(data_dir, tmp_path):
    folder = _copy(data_dir, tmp_path)
    path = folder / "Symptom_severity.csv"
    path.write_text(path.read_text().rstrip("\n") + "\nthird_elbow,3\n")
    with pytest.raises(DatasetError, match="unknown symptom 'third_elbow'"):
        load_knowledge(folder)
