"""The symptom vocabulary: canonical ids, display labels and a normaliser.

The ids come from the Kaggle dataset header, cleaned of stray spaces (``spotting_ urination``
becomes ``spotting_urination``). Their order is the feature order everywhere: the 0/1 vector
of the dataset, the model's input and the v2 ``[N, 132]`` tensor.

The header names ``fluid_overload`` twice (positions 45 and 117). Position 45 is 0 in every
row of Training.csv and Testing.csv; position 117 is set for Alcoholic hepatitis. The name
``fluid_overload`` therefore denotes position 117, and position 45 keeps its place as
``fluid_overload_duplicate`` so that the vector stays 132 wide (clients of KServe's stock
sklearn runtime send that shape). Feature building folds a 1 at position 45 into position 117,
so both columns mean the same thing and the model only ever sees one of them.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, wraps
from importlib import resources
from typing import Any, TypeVar

from rapidfuzz import fuzz, process

from symptom_dx.errors import EmptySymptomsError, SymptomDxError, UnknownSymptomError

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# Separators tried in free text only when a phrase is not a symptom as a whole ("cold hands and
# feet" is one symptom); a list's own separators are split_symptom_list's.
_PHRASE_SEPARATORS = re.compile(r"\s+(?:and|with|&|\+)\s+|/", re.IGNORECASE)
# A fuzzy match is accepted without asking only when it is this close (rapidfuzz's ratio: the
# normalised Indel similarity, 2 x common subsequence / total length), and only when no other
# symptom comes within RIVAL_MARGIN of it.
AUTO_ACCEPT_RATIO = 0.88
RIVAL_MARGIN = 0.02
SUGGEST_RATIO = 0.6
# A fuzzy match scans every known spelling (~20 us a name). Names longer than any symptom,
# and unknown names past the first few of a list, are not fuzzy-matched; a caller that takes
# names from strangers also passes a FuzzyBudget, which caps the scans of one request.
MAX_FUZZY_CHARS = 64
MAX_SUGGESTED_UNKNOWNS = 5
# Fuzzy look-ups keep what people typed only when it turned out to be a symptom (a misspelling
# they correct: the same few come again and again), at most this many: a name that matches
# nothing may say more about someone's health than a symptom name, and is scanned again if it
# comes again. (What else is kept between requests: single words, ``free_text.word_cache``.)
FOUND_CACHE_SIZE = 8192

_Found = TypeVar("_Found", bound=Callable[..., Any])


def cache_found(maxsize: int = FOUND_CACHE_SIZE) -> Callable[[_Found], _Found]:
    """Memoise a function's answers that found something (not None), up to ``maxsize`` of them
    (then no more are added); a None answer is never kept. ``found`` is the memo (tests)."""

    def decorate(function: _Found) -> _Found:
        found: dict[tuple, Any] = {}

        @wraps(function)
        def cached(*args: Any) -> Any:
            answer = found.get(args)
            if answer is None:
                answer = function(*args)
                if answer is not None and len(found) < maxsize:
                    found[args] = answer
            return answer

        cached.found = found  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    return decorate


class TooManyInexactNames(SymptomDxError, ValueError):
    """More names than one request may have matched approximately."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"more than {limit} symptom names in this request are not exact spellings "
            f"(at most {limit} are matched approximately): send canonical symptom ids"
        )


class FuzzyBudget:
    """How many approximate matches (scans of every known spelling) one request may cost.

    Exact spellings (case, spaces, punctuation, labels and aliases aside) cost nothing; each
    other name, and each unknown name's suggestions, spends one. Past ``limit`` the request is
    refused with ``TooManyInexactNames``.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.spent = 0

    @property
    def left(self) -> int:
        return self.limit - self.spent

    def spend(self) -> None:
        if self.spent >= self.limit:
            raise TooManyInexactNames(self.limit)
        self.spent += 1


def compact_key(text: str) -> str:
    """Case-, space-, underscore- and punctuation-insensitive key of a name."""
    return _NON_ALNUM.sub("", text.casefold())


@dataclass(frozen=True)
class Symptom:
    position: int
    id: str
    header: str
    label: str


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The 132 symptoms in feature order, with lookups by any accepted spelling."""

    symptoms: tuple[Symptom, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    # position of an unused duplicate column -> position of the column it duplicates
    duplicates: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys: dict[str, str] = {}
        for s in self.symptoms:
            for spelling in (s.id, s.header, s.label):
                keys.setdefault(compact_key(spelling), s.id)
        # The header spelling "fluid_overload" and the duplicate's own id both mean the used
        # column: a name never selects the unused one.
        for dup, used in self.duplicates.items():
            keys[compact_key(self.symptoms[dup].header)] = self.symptoms[used].id
            keys[compact_key(self.symptoms[dup].id)] = self.symptoms[used].id
            keys[compact_key(self.symptoms[dup].label)] = self.symptoms[used].id
        for alias, sid in self.aliases.items():
            keys.setdefault(compact_key(alias), sid)
        object.__setattr__(self, "_keys", keys)
        # Each spelling exactly as written here -> what ``lookup`` answers for it: a list of
        # names as clients mostly send them is read with one dict look-up a name.
        spellings = [x for s in self.symptoms for x in (s.id, s.header, s.label)]
        verbatim = {x: keys[compact_key(x)] for x in [*spellings, *self.aliases]}
        object.__setattr__(self, "_verbatim", verbatim)
        object.__setattr__(self, "_key_list", list(keys))  # what fuzzy matching scans
        object.__setattr__(self, "_index", {s.id: s.position for s in self.symptoms})
        object.__setattr__(self, "_ids", tuple(s.id for s in self.symptoms))

    # -- lookups ------------------------------------------------------------------------------
    @property
    def ids(self) -> tuple[str, ...]:
        """The ids in feature order (built once: servers read it on every request)."""
        return self._ids  # type: ignore[attr-defined]

    @property
    def size(self) -> int:
        return len(self.symptoms)

    @property
    def selectable(self) -> tuple[Symptom, ...]:
        """Symptoms a person can pick (the unused duplicate column is left out)."""
        return tuple(s for s in self.symptoms if s.position not in self.duplicates)

    def position(self, symptom_id: str) -> int:
        return self._index[symptom_id]  # type: ignore[attr-defined]

    def label(self, symptom_id: str) -> str:
        return self.symptoms[self.position(symptom_id)].label

    def __contains__(self, symptom_id: object) -> bool:
        return symptom_id in self._index  # type: ignore[attr-defined]

    # -- normalising ----------------------------------------------------------------------------
    def lookup(self, name: str, budget: FuzzyBudget | None = None) -> str | None:
        """The canonical id of ``name``, or None. Accepts case, space/underscore, punctuation,
        display labels, aliases and minor misspellings (the latter spend from ``budget``)."""
        key = compact_key(name)
        keys: dict[str, str] = self._keys  # type: ignore[attr-defined]
        if key in keys:
            return keys[key]
        if not key or len(key) > MAX_FUZZY_CHARS:
            return None
        if budget is not None:
            budget.spend()
        return _fuzzy_lookup(self, key)

    def exact(self, name: str) -> str | None:
        """The canonical id of ``name`` if it is an exact spelling (case, spaces, punctuation,
        labels and aliases aside), else None: no approximate matching."""
        return self._keys.get(compact_key(name))  # type: ignore[attr-defined]

    def needs_fuzzy(self, name: str) -> bool:
        """Whether ``lookup`` would match ``name`` approximately (and spend from a budget)."""
        key = compact_key(name)
        return bool(key) and len(key) <= MAX_FUZZY_CHARS and key not in self._keys  # type: ignore[attr-defined]

    def suggestions(self, name: str, n: int = 3, budget: FuzzyBudget | None = None) -> list[str]:
        """Known ids whose spelling is close to ``name``, best first."""
        key = compact_key(name)
        if len(key) > MAX_FUZZY_CHARS:
            return []
        if budget is not None:
            budget.spend()
        keys: dict[str, str] = self._keys  # type: ignore[attr-defined]
        out: list[str] = []
        close = process.extract(
            key,
            self._key_list,  # type: ignore[attr-defined]
            scorer=fuzz.ratio,
            score_cutoff=SUGGEST_RATIO * 100,
            limit=n * 3,
        )
        for k, _, _ in close:
            sid = keys[k]
            if sid not in out:
                out.append(sid)
        return out[:n]

    def normalise(self, name: str) -> str:
        """The canonical id of ``name``; raises UnknownSymptomError with close names."""
        sid = self.lookup(name)
        if sid is None:
            raise UnknownSymptomError({name: self.suggestions(name)})
        return sid

    def resolve(self, names: Iterable[str], budget: FuzzyBudget | None = None) -> list[str]:
        """Canonical ids of ``names`` in first-seen order, duplicates dropped.

        Raises one UnknownSymptomError naming every unknown name, or EmptySymptomsError, or
        TooManyInexactNames when ``budget`` runs out.
        """
        ids: list[str] = []
        unknown: dict[str, list[str]] = {}
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            few = len(unknown) < MAX_SUGGESTED_UNKNOWNS
            # Past a few unknown names the request fails anyway: exact spellings only.
            sid = self.lookup(name, budget) if few else self._keys.get(compact_key(name))  # type: ignore[attr-defined]
            if sid is None:
                unknown[name] = self.suggestions(name, budget=budget) if few else []
            elif sid not in ids:
                ids.append(sid)
        if unknown:
            raise UnknownSymptomError(unknown)
        if not ids:
            raise EmptySymptomsError()
        return ids

    def resolve_verbatim(self, names: Iterable[str]) -> list[str] | None:
        """``resolve(names)`` if every name is a spelling exactly as the vocabulary writes it
        (an id, header, label or alias, stripped), else None (also for no names at all)."""
        verbatim: dict[str, str] = self._verbatim  # type: ignore[attr-defined]
        ids: list[str] = []
        for name in names:
            sid = verbatim.get(name)
            if sid is None:
                return None
            if sid not in ids:
                ids.append(sid)
        return ids or None

    def parse(self, text: str, budget: FuzzyBudget | None = None) -> list[str]:
        """Canonical ids from one comma-separated string (the v2 ``symptoms`` element)."""
        return self.resolve(split_symptom_list(text), budget)

    def check_budget(self, name_lists: Sequence[Sequence[str]], budget: FuzzyBudget) -> None:
        """Refuse (TooManyInexactNames) names whose inexact ones alone would overspend
        ``budget``, before any approximate matching is done."""
        if sum(map(len, name_lists)) > budget.left:
            inexact = sum(self.needs_fuzzy(n) for names in name_lists for n in names)
            if inexact > budget.left:
                raise TooManyInexactNames(budget.limit)

    def understand(self, text: str) -> tuple[list[str], list[str]]:
        """Free text ("itchy skin, rash and fever") -> (ids understood, phrases not understood)."""
        ids: list[str] = []
        missed: list[str] = []
        for part in split_symptom_list(text):
            phrases = [part] if self.lookup(part) else split_phrases(part)
            for phrase in phrases:
                sid = self.lookup(phrase)
                if sid is None:
                    missed.append(phrase)
                elif sid not in ids:
                    ids.append(sid)
        return ids, missed

    @property
    def optional_ids(self) -> frozenset[str]:
        """Ids a dataset may leave out (the unused duplicate column)."""
        return frozenset(self.symptoms[d].id for d in self.duplicates)

    def columns_to_ids(self, header: list[str]) -> list[str | None]:
        """Map CSV column names to ids; None for unknown columns.

        A name that appears twice (Kaggle's ``fluid_overload``) maps, at its first occurrence,
        to the unused duplicate column and, at its second, to the used one, as in Kaggle's
        header.
        """
        keys: dict[str, str] = self._keys  # type: ignore[attr-defined]
        duplicate_of = {
            self.symptoms[u].id: self.symptoms[d].id for d, u in self.duplicates.items()
        }
        counts = Counter(compact_key(c) for c in header)
        first_seen: set[str] = set()
        out: list[str | None] = []
        duplicate_ids = {self.symptoms[d].id for d in self.duplicates}
        for column in header:
            if column.strip() in duplicate_ids:  # our own canonical CSV names it explicitly
                out.append(column.strip())
                continue
            key = compact_key(column)
            sid = keys.get(key)
            if sid in duplicate_of and counts[key] > 1 and sid not in first_seen:
                first_seen.add(sid)
                sid = duplicate_of[sid]
            out.append(sid)
        return out


def split_symptom_list(text: str) -> list[str]:
    """Split "a, b; c" into ["a", "b", "c"] (at commas, semicolons and newlines), dropping empty
    parts."""
    if ";" in text or "\n" in text:
        text = text.replace(";", ",").replace("\n", ",")
    return [p.strip() for p in text.split(",") if p.strip()]  # str.split: ~3x a regex's speed


def split_phrases(text: str) -> list[str]:
    """Split "rash and fever" into ["rash", "fever"] (free text only)."""
    return [p.strip() for p in _PHRASE_SEPARATORS.split(text) if p.strip()]


@cache_found()
def _fuzzy_lookup(vocab: Vocabulary, key: str) -> str | None:
    """The symptom whose spelling is closest to ``key`` if it is close enough and unrivalled."""
    keys: dict[str, str] = vocab._keys  # type: ignore[attr-defined]
    scored = process.extract(
        key,
        vocab._key_list,  # type: ignore[attr-defined]
        scorer=fuzz.ratio,
        score_cutoff=(AUTO_ACCEPT_RATIO - RIVAL_MARGIN) * 100,
        limit=None,
    )
    if not scored:
        return None
    best_key, best_score, _ = max(scored, key=lambda match: (match[1], match[0]))
    if best_score < AUTO_ACCEPT_RATIO * 100:
        return None
    # Refuse to guess between two different symptoms that are both this close.
    rivals = {keys[k] for k, score, _ in scored if score >= best_score - RIVAL_MARGIN * 100}
    return keys[best_key] if len(rivals) == 1 else None


def _read_resource(name: str) -> list[dict[str, str]]:
    with resources.files("symptom_dx.resources").joinpath(name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def vocabulary() -> Vocabulary:
    """The project's symptom vocabulary (read once from the package's resources)."""
    symptoms = tuple(
        Symptom(int(r["position"]), r["id"], r["header"], r["label"])
        for r in _read_resource("symptoms.csv")
    )
    aliases = {r["alias"]: r["id"] for r in _read_resource("symptom_aliases.csv")}
    by_id = {s.id: s.position for s in symptoms}
    duplicates = {by_id["fluid_overload_duplicate"]: by_id["fluid_overload"]}
    return Vocabulary(symptoms=symptoms, aliases=aliases, duplicates=duplicates)
