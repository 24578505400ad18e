"""Interface text, symptom labels and disease names in the languages the UI offers.

Translations are data files in ``resources/i18n/<language>.json``:

- ``ui``: interface strings by key, with ``{name}`` placeholders filled by :meth:`text`;
- ``symptoms``: a label per canonical symptom id (all 132, the duplicate column included);
- ``diseases``: a name per canonical disease name (all 41).

English symptom labels come from the vocabulary and English disease names are the canonical
names, so ``en.json`` holds only ``ui``. Every other language must cover every key, id and
name (tests check this). Descriptions and precautions come from English-only tables and are not
translated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from symptom_dx.diseases import disease_catalog
from symptom_dx.vocabulary import split_symptom_list, vocabulary

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "ko")
_PLACEHOLDER = re.compile(r"{(\w+)}")
_PARENTHESES = re.compile(r"\s*\(([^)]*)\)\s*")


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, eq=False)
class Translations:
    """One language: interface text, symptom labels and disease names."""

    language: str
    name: str
    ui: dict[str, str]
    symptoms: dict[str, str] = field(default_factory=dict)
    diseases: dict[str, str] = field(default_factory=dict)
    fallback: Translations | None = None

    def __post_init__(self) -> None:
        keys: dict[str, str] = {}
        for sid, label in self.symptoms.items():
            # "속쓰림(위산 과다)" answers to the whole label and to each part of it.
            parts = [label, _PARENTHESES.sub(" ", label), *_PARENTHESES.findall(label)]
            for part in parts:
                if _key(part):
                    keys.setdefault(_key(part), sid)
        object.__setattr__(self, "_keys", keys)

    def text(self, key: str, **values: object) -> str:
        """The interface string ``key`` with its placeholders filled."""
        template = self.ui.get(key)
        if template is None:
            if self.fallback is None:
                raise KeyError(f"no interface text '{key}' in language '{self.language}'")
            return self.fallback.text(key, **values)
        return template.format_map(_Blank({k: str(v) for k, v in values.items()}))

    def symptom(self, symptom_id: str) -> str:
        """The display label of a canonical symptom id."""
        label = self.symptoms.get(symptom_id)
        if label is not None:
            return label
        return vocabulary().label(symptom_id) if symptom_id in vocabulary() else symptom_id

    def disease(self, name: str) -> str:
        """The display name of a canonical disease name."""
        return self.diseases.get(name, name)

    def lookup_symptom(self, phrase: str) -> str | None:
        """The symptom id whose label in this language is ``phrase`` (or part of it)."""
        return self._keys.get(_key(phrase))  # type: ignore[attr-defined]

    def understand(self, text: str) -> tuple[list[str], list[str]]:
        """Free text -> (ids understood, phrases not understood), in this language or English.

        English goes through the vocabulary's normaliser (aliases, misspellings, "a and b");
        a phrase it misses is tried against this language's labels.
        """
        vocab = vocabulary()
        ids: list[str] = []
        missed: list[str] = []
        for part in split_symptom_list(text):
            sid = self.lookup_symptom(part)
            found, not_found = ([sid], []) if sid else vocab.understand(part)
            for s in found:
                if s not in ids:
                    ids.append(s)
            missed += not_found
        return ids, missed


def _key(text: str) -> str:
    return "".join(text.casefold().split())


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders of an interface string."""
    return set(_PLACEHOLDER.findall(template))


def _read(language: str) -> dict:
    path = resources.files("symptom_dx.resources").joinpath("i18n").joinpath(f"{language}.json")
    with path.open(encoding="utf-8") as f:
        return json.load(f)


@cache
def translations(language: str = DEFAULT_LANGUAGE) -> Translations:
    """The translations of ``language`` (one of ``LANGUAGES``); missing text falls back to
    English."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language '{language}' (choose from {', '.join(LANGUAGES)})")
    data = _read(language)
    if language == DEFAULT_LANGUAGE:
        vocab = vocabulary()
        return Translations(
            language=language,
            name=data["name"],
            ui=data["ui"],
            symptoms={s.id: s.label for s in vocab.symptoms},
            diseases={n: n for n in disease_catalog().names},
        )
    return Translations(
        language=language,
        name=data["name"],
        ui=data["ui"],
        symptoms=data.get("symptoms", {}),
        diseases=data.get("diseases", {}),
        fallback=translations(DEFAULT_LANGUAGE),
    )
