"""Expectations on the real Kaggle files (the shared copy, or DATA_DIR)."""

import csv

import numpy as np

from symptom_dx.dataset import dataset_statistics, load_dataset
from symptom_dx.diseases import disease_catalog
from symptom_dx.vocabulary import vocabulary


def test_training_set_obeys_the_contract(training_set):
    assert training_set.X.shape == (4920, 132)
    assert set(np.unique(training_set.X)) <= {0, 1}
    assert set(training_set.y) == set(disease_catalog().names)


def test_statistics_show_the_duplication(training_set):
    stats = dataset_statistics(training_set)
    assert stats["rows"] == 4920
    assert stats["distinct_patterns"] == 304
    assert stats["diseases"] == 41
    assert set(stats["rows_per_disease"].values()) == {120}
    assert stats["never_present_symptoms"] == ["fluid_overload_duplicate"]
    assert stats["symptoms_per_row"]["min"] >= 3


def test_header_quirks(data_dir):
    with open(data_dir / "Training.csv") as f:
        header = next(csv.reader(f))
    assert header.count("fluid_overload") == 2
    assert {"spotting_ urination", "foul_smell_of urine", "dischromic _patches"} <= set(header)
    assert vocabulary().columns_to_ids(header[:-1]) == list(vocabulary().ids)


def test_testing_csv_repeats_training_rows(data_dir, training_set):
    testing = load_dataset(data_dir / "Testing.csv")
    assert len(testing) == 41
    seen = {(r.tobytes(), y) for r, y in zip(training_set.X, training_set.y, strict=True)}
    assert all((r.tobytes(), y) in seen for r, y in zip(testing.X, testing.y, strict=True))


def test_every_label_maps_to_the_tables(data_dir):
    catalog = disease_catalog()
    for name in ("symptom_Description.csv", "symptom_precaution.csv"):
        with open(data_dir / name) as f:
            table = {catalog.canonical(row[0]) for row in csv.reader(f) if row}
        assert None not in table, name
        assert table == set(catalog.names), name


def test_every_severity_symptom_is_known(data_dir):
    with open(data_dir / "Symptom_severity.csv") as f:
        names = [row[0] for row in csv.reader(f) if row]
    mapped = {vocabulary().lookup(n) for n in names}
    assert None not in mapped
    assert mapped >= set(vocabulary().ids) - vocabulary().optional_ids
