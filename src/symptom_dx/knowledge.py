"""What the Kaggle side tables say about diseases and symptoms, keyed by canonical names.

Three files sit beside Training.csv, none with a header row:

- ``symptom_Description.csv``: disease, description;
- ``symptom_precaution.csv``: disease, up to four precautions (some cells blank);
- ``Symptom_severity.csv``: symptom, weight 1-7 (a trailing blank line).

Their spellings differ from the training data (``Osteoarthristis``, ``foul_smell_ofurine``,
``Diabetes `` with a trailing space): every disease is mapped through the disease catalog and
every symptom through the vocabulary's normaliser, so callers only ever see canonical disease
names and canonical symptom ids. A name that cannot be mapped, a missing file or a disease of
the catalog absent from a table is an error naming the file, not a silent gap.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from symptom_dx.diseases import disease_catalog
from symptom_dx.errors import DatasetError, SourceError
from symptom_dx.vocabulary import vocabulary

DESCRIPTION_FILE = "symptom_Description.csv"
PRECAUTION_FILE = "symptom_precaution.csv"
SEVERITY_FILE = "Symptom_severity.csv"
KNOWLEDGE_FILES = (DESCRIPTION_FILE, PRECAUTION_FILE, SEVERITY_FILE)

# Severity weights run 1-7. Of the 132 symptoms, 22 weigh 6 or more, and that set holds
# diarrhoea, malaise and anal irritation; only five weigh 7 (high fever, chest pain, weakness in
# limbs, swelling of stomach, coma), which are the ones that call for prompt care. The UI's
# urgent-care advice uses this threshold.
URGENT_SEVERITY = 7


@dataclass(frozen=True)
class Knowledge:
    """Descriptions, precautions and severity weights by canonical disease name / symptom id."""

    descriptions: dict[str, str] = field(default_factory=dict)
    precaution_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    severities: dict[str, int] = field(default_factory=dict)

    def description(self, disease: str) -> str:
        """The description of a canonical disease name ("" when the table has none)."""
        return self.descriptions.get(disease, "")

    def precautions(self, disease: str) -> tuple[str, ...]:
        """The non-blank precautions of a canonical disease name, in table order."""
        return self.precaution_lists.get(disease, ())

    def severity(self, symptom_id: str) -> int | None:
        """The 1-7 weight of a canonical symptom id, or None when the table has no weight."""
        return self.severities.get(symptom_id)

    def urgent(self, symptom_ids: list[str], threshold: int = URGENT_SEVERITY) -> list[str]:
        """The symptoms among ``symptom_ids`` whose weight reaches ``threshold``, in order."""
        return [s for s in symptom_ids if (self.severity(s) or 0) >= threshold]


def load_knowledge(data_dir: str | Path) -> Knowledge:
    """Read the three side tables from ``data_dir``.

    Raises SourceError when a file is missing and DatasetError (listing every problem) when a
    row names a disease or symptom that cannot be mapped, or a catalog disease has no row.
    """
    data_dir = Path(data_dir)
    missing = [name for name in KNOWLEDGE_FILES if not (data_dir / name).is_file()]
    if missing:
        raise SourceError(
            f"knowledge tables not found in {data_dir}: {', '.join(missing)} "
            "(point the data folder setting at the Kaggle folder that holds them)"
        )
    return Knowledge(
        descriptions=_read_descriptions(data_dir / DESCRIPTION_FILE),
        precaution_lists=_read_precautions(data_dir / PRECAUTION_FILE),
        severities=_read_severities(data_dir / SEVERITY_FILE),
    )


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.reader(f) if any(cell.strip() for cell in row)]


def _by_disease(path: Path, values: dict[str, list[str]]) -> dict[str, list[str]]:
    """Map each row's disease spelling to its canonical name; raise on unknown or absent ones."""
    catalog = disease_catalog()
    out: dict[str, list[str]] = {}
    problems: list[str] = []
    for spelling, cells in values.items():
        name = catalog.canonical(spelling)
        if name is None:
            problems.append(f"unknown disease '{spelling}'")
        elif name in out:
            problems.append(f"disease '{name}' appears twice")
        else:
            out[name] = cells
    problems += [f"no row for disease '{n}'" for n in catalog.names if n not in out]
    if problems:
        raise DatasetError(path.name, problems)
    return out


def _read_descriptions(path: Path) -> dict[str, str]:
    rows = {r[0]: r[1:] for r in _rows(path)}
    return {
        name: " ".join(c.strip() for c in cells if c.strip())
        for name, cells in _by_disease(path, rows).items()
    }


def _read_precautions(path: Path) -> dict[str, tuple[str, ...]]:
    rows = {r[0]: r[1:] for r in _rows(path)}
    return {
        name: tuple(_sentence(c) for c in cells if c.strip())
        for name, cells in _by_disease(path, rows).items()
    }


def _read_severities(path: Path) -> dict[str, int]:
    """Weights by symptom id. The table lists symptoms in the dataset's header order, so a
    name is first matched by position (this keeps the two ``fluid_overload`` rows apart), then
    through the normaliser (``foul_smell_ofurine``)."""
    vocab = vocabulary()
    rows = _rows(path)
    by_position = vocab.columns_to_ids([row[0].strip() for row in rows])
    out: dict[str, int] = {}
    problems: list[str] = []
    for row, sid in zip(rows, by_position, strict=True):
        spelling = row[0].strip()
        sid = sid or vocab.lookup(spelling)
        try:
            weight = int(row[1])
        except (IndexError, ValueError):
            problems.append(f"symptom '{spelling}' has no integer weight")
            continue
        if sid is None:
            problems.append(f"unknown symptom '{spelling}'")
        elif not 1 <= weight <= 7:
            problems.append(f"symptom '{spelling}' has weight {weight} outside 1-7")
        else:
            out.setdefault(sid, weight)
    if problems:
        raise DatasetError(path.name, problems)
    return out


def _sentence(text: str) -> str:
    """'consult nearest hospital ' -> 'Consult nearest hospital'."""
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]
