"""The dataset contract: what a symptom CSV must look like, checked with one line per problem.

A valid dataset has the 132 symptom columns (any spelling the vocabulary accepts, in any
order) and a ``prognosis`` column; every symptom cell is 0 or 1; every label names a known
disease; no row is blank or has no symptom at all. ``load_dataset`` returns the rows in the
canonical feature order with canonical disease names, or raises ``DatasetError`` listing every
problem it found.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symptom_dx.diseases import disease_catalog
from symptom_dx.errors import DatasetError
from symptom_dx.features import fold_duplicates
from symptom_dx.vocabulary import compact_key, vocabulary

LABEL_COLUMN = "prognosis"
# Enough examples of one kind of problem to find it; the count says how many there are.
_MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Dataset:
    """Rows in canonical feature order. ``X`` is uint8 [n, 132]; ``y`` canonical disease names."""

    X: np.ndarray
    y: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)

    def distinct(self) -> Dataset:
        """One row per distinct (pattern, label): 4,920 Kaggle rows hold only 304."""
        seen: dict[tuple[bytes, str], int] = {}
        for i, (row, label) in enumerate(zip(self.X, self.y, strict=True)):
            seen.setdefault((row.tobytes(), str(label)), i)
        idx = np.fromiter(seen.values(), dtype=np.int64)
        return Dataset(self.X[idx], self.y[idx], self.source)


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_EXAMPLES])
    return shown + (f" (+{len(items) - _MAX_EXAMPLES} more)" if len(items) > _MAX_EXAMPLES else "")


def parse_dataset(text: str, source: str) -> Dataset:
    """Validate and parse CSV text. Raises DatasetError listing every problem."""
    vocab = vocabulary()
    catalog = disease_catalog()
    if not text.strip():
        raise DatasetError(source, ["the file is empty"])
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:  # e.g. a field longer than the csv module allows
        raise DatasetError(source, [f"not a readable CSV file: {e}"]) from None
    header = [c.strip() for c in rows[0]]
    body = rows[1:]
    problems: list[str] = []

    label_at = [i for i, c in enumerate(header) if compact_key(c) == compact_key(LABEL_COLUMN)]
    symptom_cols = [i for i in range(len(header)) if i not in label_at]
    ids = vocab.columns_to_ids([header[i] for i in symptom_cols])
    unknown_cols = [header[c] for c, sid in zip(symptom_cols, ids, strict=True) if sid is None]
    missing = [s for s in vocab.ids if s not in ids and s not in vocab.optional_ids]
    repeated = [s for s, n in Counter(i for i in ids if i).items() if n > 1]
    if not label_at:
        problems.append(f"missing column '{LABEL_COLUMN}'")
    if missing:
        problems.append(f"missing symptom column(s): {_examples(missing)}")
    if unknown_cols:
        problems.append(f"unknown column(s): {_examples(unknown_cols)}")
    if repeated:
        problems.append(f"repeated symptom column(s): {_examples(repeated)}")
    if not body:
        problems.append("no data rows after the header")
    if problems:
        raise DatasetError(source, problems)

    label_col = label_at[0]
    positions = np.array([vocab.position(s) for s in ids])  # type: ignore[arg-type]
    # A dataset may omit the optional duplicate column; its cells then stay 0.
    X = np.zeros((len(body), vocab.size), dtype=np.uint8)
    y: list[str] = []
    blank, short, no_symptom, bad_values, unknown_labels = [], [], [], [], Counter()
    for r, row in enumerate(body, start=2):  # line numbers as an editor shows them
        if not any(cell.strip() for cell in row):
            blank.append(str(r))
            continue
        if len(row) != len(header):
            short.append(f"line {r} has {len(row)} fields, expected {len(header)}")
            continue
        values = [row[c].strip() for c in symptom_cols]
        for c, v in zip(symptom_cols, values, strict=True):
            if v not in ("0", "1"):
                bad_values.append(f"line {r} column '{header[c]}' = {v!r}")
        label = row[label_col]
        name = catalog.canonical(label)
        if name is None:
            unknown_labels[label.strip()] += 1
        if any(v not in ("0", "1") for v in values) or name is None:
            y.append("")
            continue
        X[r - 2, positions] = np.array(values, dtype=np.uint8)
        if not X[r - 2].any():
            no_symptom.append(str(r))
        y.append(name)

    if blank:
        problems.append(f"blank row(s) at line(s) {_examples(blank)}")
    if short:
        problems.append(_examples(short))
    if bad_values:
        problems.append(f"{len(bad_values)} value(s) not 0/1: {_examples(bad_values)}")
    if unknown_labels:
        shown = [f"'{k}' ({n} rows)" for k, n in unknown_labels.most_common()]
        problems.append(f"unknown disease label(s): {_examples(shown)}")
    if no_symptom:
        problems.append(f"row(s) with no symptom at line(s) {_examples(no_symptom)}")
    if problems:
        raise DatasetError(source, problems)
    return Dataset(fold_duplicates(X), np.array(y, dtype=object), source)


def load_dataset(path: str | Path, name: str = "") -> Dataset:
    """Read and validate a CSV file (see ``parse_dataset``); errors call it ``name`` if given."""
    path = Path(path)
    name = name or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(name, ["file not found"]) from None
    except UnicodeDecodeError:
        raise DatasetError(name, ["not a UTF-8 text file"]) from None
    except OSError as e:  # a folder, no permission, ...
        raise DatasetError(name, [f"cannot read it: {e.strerror or e}"]) from None
    return parse_dataset(text, name)


def write_dataset(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` in canonical form (symptom ids in feature order, canonical disease names),
    the form every step after ingest reads. The file appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([*vocabulary().ids, LABEL_COLUMN])
            for row, label in zip(ds.X, ds.y, strict=True):
                w.writerow([*row.tolist(), label])
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def dataset_statistics(ds: Dataset) -> dict:
    """Figures worth a glance before training: size, duplication, class balance, sparsity."""
    vocab = vocabulary()
    distinct = ds.distinct()
    per_row = ds.X.sum(axis=1)
    prevalence = ds.X.mean(axis=0)
    return {
        "rows": len(ds),
        "distinct_patterns": len(distinct),
        "duplicate_rows": len(ds) - len(distinct),
        "diseases": len(set(ds.y)),
        "rows_per_disease": dict(sorted(Counter(map(str, ds.y)).items())),
        "patterns_per_disease": dict(sorted(Counter(map(str, distinct.y)).items())),
        "symptoms_per_row": {
            "min": int(per_row.min()),
            "mean": round(float(per_row.mean()), 3),
            "max": int(per_row.max()),
        },
        "never_present_symptoms": [s for s, p in zip(vocab.ids, prevalence, strict=True) if p == 0],
    }
