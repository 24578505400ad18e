"""Disease names: one canonical name per class, mapped from every spelling the data uses.

The training labels carry trailing spaces (``Diabetes ``) and misspellings (``Peptic ulcer
diseae``); the description table spells one disease differently again (``Dimorphic
hemorrhoids(piles)`` against the label ``Dimorphic hemmorhoids(piles)``). The canonical name is
a corrected English name; ``diseases.csv`` in the resources maps the training label and the
table label to it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


@dataclass(frozen=True)
class Disease:
    """One disease: its canonical name and how the training data and the tables spell it."""

    name: str
    training_label: str
    table_label: str


@dataclass(frozen=True, eq=False, repr=False)  # its repr would list all 41 diseases
class DiseaseCatalog:
    """The 41 diseases, with lookups by any spelling the data uses."""

    diseases: tuple[Disease, ...]

    def __post_init__(self) -> None:
        keys: dict[str, str] = {}
        for d in self.diseases:
            for spelling in (d.name, d.training_label, d.table_label):
                keys[_key(spelling)] = d.name
        object.__setattr__(self, "_keys", keys)

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical names, sorted (the model's class order)."""
        return tuple(sorted(d.name for d in self.diseases))

    def canonical(self, spelling: str) -> str | None:
        """Canonical name for a training label, a table label or the name itself; else None."""
        return self._keys.get(_key(spelling))  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._keys.values()  # type: ignore[attr-defined]


@cache
def disease_catalog() -> DiseaseCatalog:
    with (
        resources.files("symptom_dx.resources").joinpath("diseases.csv").open(encoding="utf-8") as f
    ):
        rows = list(csv.DictReader(f))
    return DiseaseCatalog(
        tuple(Disease(r["name"], r["training_label"], r["table_label"]) for r in rows)
    )
