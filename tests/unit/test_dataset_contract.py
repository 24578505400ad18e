"""The dataset contract on small CSVs built here: every problem gets one readable line."""

import numpy as np
import pytest

from symptom_dx.dataset import LABEL_COLUMN, load_dataset, parse_dataset
from symptom_dx.errors import DatasetError
from symptom_dx.vocabulary import vocabulary

HEADER = [s.header for s in vocabulary().symptoms] + [LABEL_COLUMN]


def csv_text(rows, header=HEADER):
    return "\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n"


def row(label="Fungal infection", present=("itching", "skin_rash")):
    values = [0] * 132
    for sid in present:
        values[vocabulary().position(sid)] = 1
    return [*values, label]


def problems_of(text):
    with pytest.raises(DatasetError) as e:
        parse_dataset(text, "test.csv")
    return e.value.problems, str(e.value)


def test_valid_rows_become_canonical():
    ds = parse_dataset(csv_text([row(), row("Diabetes ", ("fatigue", "polyuria"))]), "t.csv")
    assert ds.X.shape == (2, 132) and ds.X.dtype == np.uint8
    assert list(ds.y) == ["Fungal infection", "Diabetes"]


def test_columns_in_any_order_and_spelling():
    header = list(reversed(HEADER))
    rows = [list(reversed(row()))]
    ds = parse_dataset(csv_text(rows, header), "t.csv")
    assert ds.X[0, vocabulary().position("itching")] == 1


def test_duplicate_fluid_overload_column_is_folded():
    r = row(present=("itching",))
    r[45] = 1  # the first, unused fluid_overload column
    ds = parse_dataset(csv_text([r]), "t.csv")
    assert ds.X[0, 45] == 0 and ds.X[0, 117] == 1


def test_empty_file():
    problems, message = problems_of("")
    assert problems == ["the file is empty"]
    assert message == "invalid dataset test.csv: the file is empty"


def test_missing_column():
    header = [h for h in HEADER if h != "itching"]
    rows = [[v for h, v in zip(HEADER, row(), strict=True) if h != "itching"]]
    problems, _ = problems_of(csv_text(rows, header))
    assert problems == ["missing symptom column(s): itching"]


def test_missing_label_column():
    problems, _ = problems_of(csv_text([row()[:-1]], HEADER[:-1]))
    assert problems == ["missing column 'prognosis'"]


def test_non_binary_value_names_line_and_column():
    r = row()
    r[0] = 2
    problems, message = problems_of(csv_text([row(), r]))
    assert problems == ["1 value(s) not 0/1: line 3 column 'itching' = '2'"]
    assert "\n" not in message


def test_unknown_label():
    problems, _ = problems_of(csv_text([row("Corona"), row("Corona"), row()]))
    assert problems == ["unknown disease label(s): 'Corona' (2 rows)"]


def test_blank_row_and_row_without_symptoms():
    text = csv_text([row(), ["" for _ in HEADER], row(present=())])
    problems, message = problems_of(text)
    assert "blank row(s) at line(s) 3" in problems
    assert "row(s) with no symptom at line(s) 4" in problems
    assert "(and 1 more problem(s))" in message


def test_header_only():
    problems, _ = problems_of(csv_text([]))
    assert problems == ["no data rows after the header"]


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load_dataset(tmp_path / "nope.csv")


def test_unreadable_inputs_are_one_line(tmp_path):
    with pytest.raises(DatasetError, match="cannot read it"):
        load_dataset(tmp_path)  # a folder
    huge = tmp_path / "huge.csv"
    huge.write_text("a" * 200_000 + "\n")
    with pytest.raises(DatasetError, match="not a readable CSV file"):
        load_dataset(huge)
