"""Free-text symptoms, in English and Korean: what a person says they have and do not have.

People type sentences, not lists: "keep throwing up and my stomach hurts", "no fever but a
sore throat", "열은 없는데 목이 따갑고 콧물이 나요". :func:`parse_symptoms` turns such text into
canonical symptom ids (``vocabulary().ids``) in two groups, present and absent, and hands back
the parts it could not map so that a person can be asked again.

How it reads text (the data lives in ``resources/lay_terms/``):

- **Lists first.** A comma/semicolon/newline-separated part that is exactly an id, a label, an
  alias (any case, spacing or punctuation) or a Korean label is that symptom, as
  ``Vocabulary.understand`` and ``Translations.understand`` have always read lists.
- **Phrases.** Every id, label and alias, plus the lay terms of ``en.csv``/``ko.csv``, becomes a
  pattern of word keys (English: lower case, stop words dropped, a light suffix stemmer;
  Korean: Kiwi's morphemes, particles and endings dropped). A pattern matches its keys in order
  within one clause, a couple of other words apart at most ("my head really hurts",
  "머리가 너무 아파요"), so spacing variants ("머리아프고 열나요") and conjugations come free.
  ``{pain}`` in a lay term stands for each pain word of ``cues_*.csv``. A phrase contained in a
  longer one that also matched yields to it ("feel like throwing up" is nausea, not vomiting).
- **Negation.** English negation ("no", "not", "n't", "never", "without", "neither/nor") reaches
  forward to the end of its clause ("but", "however", "just", ".", ...), on through lists joined
  by "or"/"nor" and through "and" that directly follows a denied symptom; Korean negation
  ("없", "않", "안", "못", "아니", "괜찮") reaches back over its clause, which ends at "-고",
  "-는데", "-지만", "-서", a sentence ending or a comma after a predicate. "Gone", "stopped",
  "열이 내렸어요" mark a symptom as over. Phrases that only look negative ("can't stop
  coughing", "입맛이 없어요", "기침이 멈추질 않아요") are lay terms or ``pseudo`` cues and are
  read as they are meant. A symptom denied anywhere in the text is never reported present.
- **Fever.** Plain "fever", "temperature", "열", "열이 나요" are ``high_fever``, as the
  vocabulary's aliases have it; "mild/slight/low-grade fever", "미열", "열이 약간" are
  ``mild_fever``, and a plain fever in the same text then yields to it.
- **Misspellings.** An English word no pattern knows is corrected with rapidfuzz to the closest
  pattern word (``fuzz.ratio`` >= 80, >= 85 for four letters); a short list item is matched as a
  whole against every known spelling (>= 88). Both refuse when a different candidate scores
  within ``FUZZY_MARGIN`` of the best: never guess between two symptoms.
- **Language.** Text with any Hangul goes through Korean analysis (Kiwi, loaded once, lazily,
  see ``free_text_ko``); runs of Latin letters inside it are read as English.

Nothing here logs the text (it is health data), and no phrase or sentence is kept from one call
to the next: only single English words (their stems, readings and corrections, ``word_cache``;
a run of Chinese or Japanese can be a whole sentence, and is read uncached) and short list items
that turned out to be a misspelled symptom (``vocabulary.cache_found``).
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache, wraps
from importlib import resources
from pathlib import Path
from typing import TypeVar

from rapidfuzz import fuzz, process

from symptom_dx.vocabulary import cache_found, compact_key, vocabulary

_Word = TypeVar("_Word")

LANGUAGES = ("en", "ko")
# A pattern's keys may be this many other words apart (within a clause).
MAX_GAP = 2
# Fuzzy matching (rapidfuzz scores, 0-100): a word is corrected at FUZZY_WORD_CUTOFF
# (FUZZY_SHORT_WORD_CUTOFF for four-letter words), a short list item at FUZZY_PHRASE_CUTOFF; a
# different candidate within FUZZY_MARGIN of the best makes it a refusal.
FUZZY_WORD_CUTOFF = 80.0
FUZZY_SHORT_WORD_CUTOFF = 85.0
FUZZY_PHRASE_CUTOFF = 88.0
FUZZY_MARGIN = 3.0
MIN_FUZZY_WORD = 4
MAX_FUZZY_PHRASE_WORDS = 4
MAX_FUZZY_PHRASE_CHARS = 64
# A span not understood is reported as typed, cut to this many characters.
MAX_REPORTED_CHARS = 60
# Per-word look-ups are cached for ASCII words up to this long (English words are far shorter),
# this many of them.
MAX_CACHED_WORD_CHARS = 32
WORD_CACHE_SIZE = 8192

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_LIST_PARTS = re.compile(r"[^,;\n]+")
# Words (letters of any script, inner apostrophes), numbers with decimals or units, newlines,
# any other single character.
_EN_TOKEN = re.compile(
    r"\d+(?:[.,:]\d+)*(?:[^\W\d_]+|%)?|[^\W\d_]+(?:['’][^\W\d_]+)*|\n|[^\s]", re.UNICODE
)
_CLAUSE_PUNCT = frozenset(".;!?\n:()[]")
_SEGMENT_PUNCT = _CLAUSE_PUNCT | frozenset(",/&+")
_HIGH_FEVER_MARKERS = frozenset({"high", "고열"})
# A phrase does not run across these ("yellow and my pee": no "yellow pee") unless the
# pattern itself holds one ("cold hands and feet").
_JOINERS = frozenset({"and", "or", "nor", "plus", "&", "+"})
# After these "no" answers a question rather than denying what follows.
_ANSWER_FOLLOWS = frozenset({"i", "it", "my", "we", "you", "but", "just", "thanks", "thank"})
_GENERIC = "high_fever"
_MILD = "mild_fever"


def word_cache(function: Callable[[str], _Word]) -> Callable[[str], _Word]:
    """``lru_cache`` for a look-up of one English word. Anything else the tokenizer calls a word
    (a run of a script written without spaces, Chinese or Japanese: maybe a whole sentence;
    anything longer than an English word) is computed, not kept."""
    cached = lru_cache(maxsize=WORD_CACHE_SIZE)(function)

    @wraps(function)
    def look_up(word: str) -> _Word:
        if len(word) <= MAX_CACHED_WORD_CHARS and word.isascii():
            return cached(word)
        return function(word)

    look_up.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return look_up


# -- the public result and entry point ---------------------------------------------------------


@dataclass(frozen=True)
class ParsedSymptoms:
    """What a text says: symptoms present, symptoms denied, and the parts not understood."""

    present: tuple[str, ...] = ()  # canonical ids, first-seen order
    absent: tuple[str, ...] = ()  # ids the person says they do not have
    not_understood: tuple[str, ...] = ()  # spans of the text that map to nothing (as typed)


def parse_symptoms(text: str, language: str | None = None) -> ParsedSymptoms:
    """Read free text (sentences or lists, English or Korean) into present and absent ids.

    ``language`` None detects it: any Hangul means Korean analysis (which reads Latin-letter
    runs as English), otherwise English. "en" never loads the Korean analyser. Callers bound the
    text's length (``contract.MAX_ELEMENT_CHARS``).
    """
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"unsupported language '{language}' (choose from {', '.join(LANGUAGES)})")
    if not text or not text.strip():
        return ParsedSymptoms()
    if language == "ko" or (language is None and HANGUL.search(text)):
        from symptom_dx.free_text_ko import analyse_korean

        found = analyse_korean(text)
    else:
        found = analyse_english(text)
    return found.result()


# -- patterns and matches (shared by both languages) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Pattern:
    """Keys to find in order; the ids they mean (none for a cue), and how they may be found."""

    keys: tuple[str, ...]
    ids: tuple[str, ...]
    kind: str = "symptom"  # symptom | pseudo (looks negative, is not) | resolved (it is over)
    contiguous: bool = False  # no gaps (patterns holding a negation word)
    literal: bool = False  # keys are raw words, stop words included ("=the runs")
    cross_clause: bool = False  # built from a phrase that itself spans clauses
    generic_fever: bool = False  # plain "fever": yields to a mild fever in the same text
    phrase: str = ""


@dataclass(slots=True)
class Match:
    """One pattern found: the token positions it covers and whether it was denied."""

    pattern: Pattern
    positions: frozenset[int]
    first: int
    last: int
    negated: bool = False


@dataclass(slots=True)
class StreamWord:
    """One word as the matcher sees it."""

    key: str
    position: int  # index among the analysis' tokens
    clause: int
    sentence: int


class Lexicon:
    """Patterns indexed by their first key; finds every occurrence in a stream of words."""

    def __init__(self, patterns: Iterable[Pattern]):
        # each pattern with the keys after its first: most patterns that start at a word
        # ("pain ...") need a key the text does not hold, which one set test rules out
        self.by_first: dict[str, list[tuple[Pattern, frozenset[str]]]] = {}
        self.literal_by_first: dict[str, list[Pattern]] = {}
        self.keys: set[str] = set()
        seen: dict[tuple[tuple[str, ...], bool], Pattern] = {}
        for p in patterns:
            if not p.keys:
                raise ValueError(f"lay term '{p.phrase}' has no words to match")
            other = seen.get((p.keys, p.literal))
            if other is not None:
                if other.ids != p.ids or other.kind != p.kind:
                    raise ValueError(
                        f"'{p.phrase}' and '{other.phrase}' read the same "
                        f"({' '.join(p.keys)}) but mean {p.ids or p.kind} and "
                        f"{other.ids or other.kind}"
                    )
                continue
            seen[(p.keys, p.literal)] = p
            if p.literal:
                self.literal_by_first.setdefault(p.keys[0], []).append(p)
            else:
                self.by_first.setdefault(p.keys[0], []).append((p, frozenset(p.keys[1:])))
                self.keys.update(p.keys)
        self.patterns = tuple(seen.values())

    def find(self, stream: Sequence[StreamWord]) -> list[Match]:
        """Every pattern occurrence: keys in order, at most MAX_GAP words apart, one clause."""
        return self.find_columns(
            [w.key for w in stream],
            [w.position for w in stream],
            [w.clause for w in stream],
            [w.sentence for w in stream],
        )

    def find_columns(
        self,
        keys: Sequence[str],
        positions: Sequence[int],
        clauses: Sequence[int],
        sentences: Sequence[int],
    ) -> list[Match]:
        """``find`` over a stream given as columns (the parser's hottest loop: no attribute
        look-ups in it)."""
        out: list[Match] = []
        n = len(keys)
        present = set(keys)
        by_first = self.by_first
        for i, first in enumerate(keys):
            for p, rest in by_first.get(first, ()):
                if not rest <= present:
                    continue
                groups = sentences if p.cross_clause else clauses
                group = groups[i]
                reach = 1 if p.contiguous else MAX_GAP + 1  # how far the next key may be
                found = [positions[i]]
                j = i
                for key in p.keys[1:]:
                    k, end = j + 1, min(n, j + 1 + reach)
                    while k < end and groups[k] == group and keys[k] != key:
                        k += 1
                    if k >= end or groups[k] != group:
                        break
                    found.append(positions[k])
                    j = k
                else:
                    out.append(Match(p, frozenset(found), found[0], found[-1]))
        return out

    def find_literal(self, words: Sequence[str], positions: Sequence[int]) -> list[Match]:
        """Literal patterns ("=the runs"): these exact raw words, contiguous."""
        out: list[Match] = []
        for i, word in enumerate(words):
            for p in self.literal_by_first.get(word, ()):
                if tuple(words[i : i + len(p.keys)]) == p.keys:
                    span = positions[i : i + len(p.keys)]
                    out.append(Match(p, frozenset(span), span[0], span[-1]))
        return out


def _span(m: Match) -> tuple[int, int]:
    return m.first, m.last


def keep_longest(matches: Iterable[Match]) -> list[Match]:
    """Drop each match whose positions another match strictly contains (and exact repeats)."""
    matches = list(matches)
    held: set[int] = set()
    for m in matches:
        if not held.isdisjoint(m.positions):
            break
        held |= m.positions
    else:  # no two share a position (most texts): none contains or repeats another
        return sorted(matches, key=_span)
    ordered = sorted(matches, key=lambda m: (-len(m.positions), m.first))
    kept: list[Match] = []
    covering: dict[int, list[Match]] = {}  # position -> kept matches holding it
    seen: set[tuple[frozenset[int], tuple[str, ...], str]] = set()
    for m in ordered:
        ident = (m.positions, m.pattern.ids, m.pattern.kind)
        if ident in seen:
            continue
        if any(m.positions < k.positions for k in covering.get(m.first, ())):
            continue
        seen.add(ident)
        kept.append(m)
        for p in m.positions:
            covering.setdefault(p, []).append(m)
    return sorted(kept, key=_span)


@dataclass
class Findings:
    """Matches of one analysis, and spans it did not understand; ``result`` makes the answer."""

    matches: list[Match] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def result(self) -> ParsedSymptoms:
        symptoms = [m for m in self.matches if m.pattern.kind == "symptom"]
        present: list[str] = []
        absent: list[str] = []
        mild = any(_MILD in m.pattern.ids for m in symptoms if not m.negated)
        for m in symptoms:
            for sid in m.pattern.ids if m.negated else ():
                if sid not in absent:
                    absent.append(sid)
        for m in symptoms:
            if m.negated or (mild and m.pattern.generic_fever):
                continue
            for sid in m.pattern.ids:
                if sid not in present and sid not in absent:
                    present.append(sid)
        spans: list[str] = []
        for span in self.not_understood:
            if span not in spans:
                spans.append(span)
        return ParsedSymptoms(tuple(present), tuple(absent), tuple(spans))


def report(text: str) -> str:
    """A span not understood, as typed, cut short."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPORTED_CHARS else text[: MAX_REPORTED_CHARS - 1] + "…"


# -- resources ----------------------------------------------------------------------------------


def lay_terms_file(name: str) -> Iterator[str]:
    path = resources.files("symptom_dx.resources").joinpath("lay_terms").joinpath(name)
    with path.open(encoding="utf-8") as f:
        yield from f


def read_lay_terms(language: str) -> list[tuple[str, tuple[str, ...]]]:
    """(phrase, ids) rows of ``lay_terms/<language>.csv``, ``{pain}`` left unexpanded."""
    rows = csv.DictReader(lay_terms_file(f"{language}.csv"))
    return [(r["phrase"].strip(), tuple(r["id"].split(";"))) for r in rows]


@cache
def read_cues(language: str) -> dict[str, tuple[str, ...]]:
    """Cue phrases of ``lay_terms/cues_<language>.csv`` by kind (negation, pseudo, stop, ...)."""
    out: dict[str, list[str]] = {}
    for r in csv.DictReader(lay_terms_file(f"cues_{language}.csv")):
        out.setdefault(r["cue"], []).append(r["phrase"])
    return {k: tuple(v) for k, v in out.items()}


def expand(phrase: str, language: str) -> list[str]:
    """A lay term with ``{pain}`` replaced by each pain word of the language."""
    if "{pain}" not in phrase:
        return [phrase]
    return [phrase.replace("{pain}", w) for w in read_cues(language)["pain"]]


def lay_term_phrases(language: str) -> list[tuple[str, tuple[str, ...]]]:
    """Every (phrase, ids) a lay-term file defines, ``{pain}`` expanded (tests use this)."""
    return [(p, ids) for raw, ids in read_lay_terms(language) for p in expand(raw, language)]


def used_id(symptom_id: str) -> str:
    """Names never select the unused duplicate column."""
    vocab = vocabulary()
    position = vocab.position(symptom_id)
    used = vocab.duplicates.get(position)
    return vocab.symptoms[used].id if used is not None else symptom_id


@cache
def vocabulary_spellings() -> tuple[tuple[str, str], ...]:
    """(spelling, id) of every id, header, label, label part and alias, as the vocabulary
    accepts them (what ``Vocabulary.understand`` reads)."""
    vocab = vocabulary()
    out: list[tuple[str, str]] = []
    for s in vocab.symptoms:
        sid = used_id(s.id)
        label = s.label
        parts = [s.id, s.header, label]
        if s.position not in vocab.duplicates:
            bare = re.sub(r"\s*\(([^)]*)\)\s*", " ", label).strip()
            parts += [bare, *re.findall(r"\(([^)]*)\)", label)]
        out += [(p, sid) for p in parts]
    out += [(alias, used_id(sid)) for alias, sid in vocab.aliases.items()]
    return tuple(out)


@cache
def exact_english() -> dict[str, str]:
    """Compact key -> id of the vocabulary's own spellings (first one wins, as it does there)."""
    keys: dict[str, str] = {}
    for spelling, sid in vocabulary_spellings():
        keys.setdefault(compact_key(spelling), sid)
    return keys


@cache
def _fuzzy_phrase_choices() -> tuple[list[str], list[str]]:
    """Compact keys of every single-symptom English spelling and lay term, and their ids."""
    keys = dict(exact_english())
    for phrase, ids in lay_term_phrases("en"):
        if len(ids) == 1 and not phrase.startswith("="):
            keys.setdefault(compact_key(phrase), ids[0])
    return list(keys), list(keys.values())


def fuzzy_phrase(text: str) -> str | None:
    """The symptom a short list item misspells, if one is clearly closest (else None)."""
    key = compact_key(text)
    if len(key) < MIN_FUZZY_WORD or len(key) > MAX_FUZZY_PHRASE_CHARS:
        return None
    return _fuzzy_phrase_key(key)


@cache_found()
def _fuzzy_phrase_key(key: str) -> str | None:
    choices, ids = _fuzzy_phrase_choices()
    best = process.extract(
        key, choices, scorer=fuzz.ratio, limit=8, score_cutoff=FUZZY_PHRASE_CUTOFF - FUZZY_MARGIN
    )
    if not best or best[0][1] < FUZZY_PHRASE_CUTOFF:
        return None
    top = best[0][1]
    rivals = {ids[i] for _, score, i in best if score >= top - FUZZY_MARGIN}
    return ids[best[0][2]] if len(rivals) == 1 else None


# -- English ------------------------------------------------------------------------------------

_DOUBLE = re.compile(r"([b-df-hj-km-np-rtv-z])\1$")  # a doubled consonant, not l/s/z... kept


def stem(word: str) -> str:
    """A light suffix stemmer: enough to make "aches/aching/ache" or "peeing/pee" one key.

    Applied alike to patterns and text, so it need not produce real words, only agree.
    """
    w = word
    if len(w) <= 2 or not w.isalpha():
        return w
    for suffix in ("ness", "ing", "ies", "ied", "ed", "es", "s"):
        if not w.endswith(suffix):
            continue
        base = w[: -len(suffix)]
        if suffix in ("ies", "ied"):
            base += "i"
        elif suffix == "es":
            if not base.endswith(("s", "x", "z", "ch", "sh")):
                base = w[:-1]
        elif suffix == "s" and w.endswith(("ss", "us", "is")):
            base = w
        if len(base) >= 2:
            w = base
            if suffix in ("ing", "ed") and _DOUBLE.search(w) and w[-1] not in "lsz":
                w = w[:-1]
        if suffix != "ness":
            break
    if len(w) >= 3 and w.endswith("e"):
        w = w[:-1]
    elif len(w) >= 3 and w.endswith("y"):
        w = w[:-1] + "i"
    return w


_CONTRACTED = {
    "cant": ("can", "not"),
    "cannot": ("can", "not"),
    "wont": ("will", "not"),
    "aint": ("not",),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "wasnt": ("was", "not"),
    "werent": ("were", "not"),
    "havent": ("have", "not"),
    "hasnt": ("has", "not"),
    "hadnt": ("had", "not"),
    "couldnt": ("could", "not"),
    "shouldnt": ("should", "not"),
    "wouldnt": ("would", "not"),
    "im": ("i", "am"),
    "ive": ("i", "have"),
    "theyre": ("they", "are"),
    "youre": ("you", "are"),
    "thats": ("that", "is"),
    "whats": ("what", "is"),
    "gonna": ("gonna",),
}
_SUFFIXES = {"'m": ("am",), "'ve": ("have",), "'re": ("are",), "'ll": ("will",), "'d": ("would",)}


@word_cache
def _expand_word(word: str) -> tuple[str, ...]:
    """One typed word as words: contractions spelled out ("don't" -> do, not)."""
    w = word.replace("’", "'")
    if w.endswith("n't"):
        base = w[:-3]
        base = {"ca": "can", "wo": "will", "ai": ""}.get(base, base)
        return (base, "not") if base else ("not",)
    if "'" in w:
        base, _, rest = w.partition("'")
        tail = _SUFFIXES.get("'" + rest, ())
        return (base, *tail) if base else tail
    return _CONTRACTED.get(w, (w,))


@dataclass(slots=True)
class EnToken:
    text: str  # lower case ('' for punctuation)
    raw: str  # the character, for punctuation
    start: int
    end: int


def tokenize_english(text: str, offset: int = 0) -> list[EnToken]:
    """Words (contractions spelled out; "w/", "w/o", "b/c" read as words) and punctuation,
    with their offsets in the text."""
    tokens: list[EnToken] = []
    matches = list(_EN_TOKEN.finditer(text))
    skip = 0
    for i, m in enumerate(matches):
        if skip:
            skip -= 1
            continue
        s = m.group()
        start = m.start() + offset
        end = m.end() + offset
        if not s[0].isalnum():
            tokens.append(EnToken("", s, start, end))
            continue
        low = s.lower()
        if low == "b" or low == "w":  # "b/c", "w/o", "w/"
            nxt = "".join(x.group().lower() for x in matches[i + 1 : i + 3])
            if (low, nxt) in (("b", "/c"), ("w", "/o")):
                word = "because" if low == "b" else "without"
                tokens.append(EnToken(word, "", start, matches[i + 2].end() + offset))
                skip = 2
                continue
            if low == "w" and nxt[:1] == "/":
                tokens.append(EnToken("with", "", start, end + 1))
                skip = 1
                continue
        for word in _expand_word(low):
            tokens.append(EnToken(word, "", start, end))
    return tokens


@dataclass(frozen=True)
class EnglishResources:
    """Everything English analysis needs, built once."""

    lexicon: Lexicon
    stop: frozenset[str]
    negation: frozenset[str]
    terminators: frozenset[str]
    continuers: frozenset[str]
    conjunctions: frozenset[str]
    positive: frozenset[str]
    known: frozenset[str]  # words never corrected nor reported
    fuzzy_words: tuple[str, ...]  # surface words of the patterns, for corrections
    fuzzy_keys: tuple[str, ...]  # their keys


def english_keys(phrase: str, stop: frozenset[str]) -> tuple[str, ...]:
    """A phrase as matcher keys: words, stop words dropped, stemmed."""
    return tuple(stem(t.text) for t in tokenize_english(phrase) if t.text and t.text not in stop)


@cache
def english_resources() -> EnglishResources:
    cues = read_cues("en")
    stop = frozenset(cues["stop"])
    negation = frozenset(cues["negation"])
    body = {stem(w) for w in cues["body"]}
    patterns: list[Pattern] = []
    seen_vocab: set[tuple[tuple[str, ...], str]] = set()

    def add(phrase: str, ids: tuple[str, ...], kind: str = "symptom") -> None:
        keys = english_keys(phrase.lstrip("="), stop)
        if phrase.startswith("=") or (kind == "pseudo" and set(keys) <= negation):
            # Literal: these very words, stop words included ("=the runs", "not just").
            words = tuple(t.text for t in tokenize_english(phrase.lstrip("=")) if t.text)
            patterns.append(Pattern(words, ids, kind, True, True, phrase=phrase))
            return
        words = {t.text for t in tokenize_english(phrase) if t.text}
        patterns.append(
            Pattern(
                keys,
                ids,
                kind,
                contiguous=kind != "symptom" or bool(words & negation),
                # "skin and eyes have gone yellow", "eyes are red and watering": a phrase that
                # starts at a body part may run across "and" within its clause.
                cross_clause=bool(words & _JOINERS) or (bool(keys) and keys[0] in body),
                generic_fever=ids == (_GENERIC,) and not (set(keys) & _HIGH_FEVER_MARKERS),
                phrase=phrase,
            )
        )

    # The vocabulary's own spellings may read alike for two ids; the first wins, as it does
    # there. Lay terms must not clash with anything (Lexicon refuses them).
    spelled: dict[tuple[str, ...], str] = {}
    for spelling, sid in vocabulary_spellings():
        phrase = spelling.replace("_", " ")
        keys = english_keys(phrase, stop)
        if keys and spelled.setdefault(keys, sid) == sid and (keys, sid) not in seen_vocab:
            seen_vocab.add((keys, sid))
            add(phrase, (sid,))
    for phrase, ids in lay_term_phrases("en"):
        add(phrase, ids)
    for kind in ("pseudo", "resolved"):
        for phrase in cues[kind]:
            add(phrase, (), kind)
    lexicon = Lexicon(patterns)
    words_file = "".join(
        line for line in lay_terms_file("words_en.txt") if not line.startswith("#")
    )
    cue_words = {w for kind, phrases in cues.items() if kind != "pain" for w in phrases}
    known = frozenset(words_file.split()) | stop | negation | cue_words
    surface: dict[str, str] = {}
    for p in lexicon.patterns:
        for t in tokenize_english(p.phrase.lstrip("=")):
            if len(t.text) >= MIN_FUZZY_WORD and t.text.isalpha() and t.text not in stop:
                surface.setdefault(t.text, stem(t.text))
    return EnglishResources(
        lexicon=lexicon,
        stop=stop,
        negation=negation,
        terminators=frozenset(cues["terminator"]),
        continuers=frozenset(cues["continue"]),
        conjunctions=frozenset(cues["conjunction"]),
        positive=frozenset(cues["positive"]),
        known=known,
        fuzzy_words=tuple(surface),
        fuzzy_keys=tuple(surface.values()),
    )


def correct_word(word: str) -> str | None:
    """The key of the pattern word ``word`` misspells, if one is clearly closest (else None)."""
    res = english_resources()
    cutoff = FUZZY_SHORT_WORD_CUTOFF if len(word) == MIN_FUZZY_WORD else FUZZY_WORD_CUTOFF
    best = process.extract(
        word, res.fuzzy_words, scorer=fuzz.ratio, limit=5, score_cutoff=cutoff - FUZZY_MARGIN
    )
    if not best or best[0][1] < cutoff:
        return None
    top = best[0][1]
    rivals = {res.fuzzy_keys[i] for _, score, i in best if score >= top - FUZZY_MARGIN}
    return res.fuzzy_keys[best[0][2]] if len(rivals) == 1 else None


@word_cache
def _english_word(word: str) -> tuple[bool, bool, bool, str | None]:
    """How analysis reads one word: (ends a clause, ends a segment, joins phrases, its
    matcher key: stemmed, a misspelling corrected; None for a stop word)."""
    res = english_resources()
    ends = word in res.terminators
    key = None
    if word not in res.stop:
        key = stem(word)
        if (
            key not in res.lexicon.keys
            and word not in res.known
            and len(word) >= MIN_FUZZY_WORD
            and word.isalpha()
        ):
            key = correct_word(word) or key
    return ends, ends or word in res.conjunctions, word in _JOINERS, key


def analyse_english(text: str, offset: int = 0) -> Findings:
    """English text -> matches (denied ones marked) and spans not understood."""
    res = english_resources()
    tokens = tokenize_english(text, offset)
    if not tokens:
        return Findings()
    # Clauses (phrases and negation stop at them), phrases (a pattern does not run across
    # "and"/"or" either) and segments (reported as one span not understood); the words, and
    # the matcher's keys (stop words dropped, stemmed, misspellings corrected) as columns.
    clause_of: list[int] = []
    segment_of: list[int] = []
    words: list[str] = []
    word_positions: list[int] = []
    keys: list[str] = []
    key_positions: list[int] = []
    key_phrases: list[int] = []
    key_clauses: list[int] = []
    clause = segment = phrase = 0
    for i, t in enumerate(tokens):
        word = t.text
        if word:
            ends, breaks, joiner, key = _english_word(word)
            if ends:
                clause += 1
            if breaks:
                segment += 1
            if ends or joiner:
                phrase += 1
            clause_of.append(clause)
            segment_of.append(segment)
            words.append(word)
            word_positions.append(i)
            if key is not None:
                keys.append(key)
                key_positions.append(i)
                key_phrases.append(phrase)
                key_clauses.append(clause)
            if joiner:
                phrase += 1
        else:
            raw = t.raw
            ends = raw in _CLAUSE_PUNCT or raw == ","
            new_segment = raw in _SEGMENT_PUNCT
            joiner = raw in _JOINERS
            if ends:
                clause += 1
            if new_segment:
                segment += 1
            if ends or joiner:
                phrase += 1
            clause_of.append(clause)
            segment_of.append(segment)
            if ends:
                clause += 1
                phrase += 1
            if new_segment:
                segment += 1
            if joiner:
                phrase += 1

    parts = list(_parts(text, tokens, offset))
    matches = _exact_parts(parts)
    matches += res.lexicon.find_columns(keys, key_positions, key_phrases, key_clauses)
    matches += res.lexicon.find_literal(words, word_positions)
    matches = keep_longest(matches)
    matches += _fuzzy_parts(parts, matches)
    _negate_english(tokens, words, clause_of, segment_of, matches, res)
    return Findings(
        matches, _english_not_understood(text, tokens, segment_of, matches, res, offset)
    )


def _parts(text: str, tokens: Sequence[EnToken], offset: int) -> Iterator[tuple[str, list[int]]]:
    """List parts (between commas, semicolons, newlines) and the word tokens in each."""
    starts = [t.start for t in tokens]
    for m in _LIST_PARTS.finditer(text):
        part = m.group()
        if not part.strip():
            continue
        lo = bisect_left(starts, m.start() + offset)
        hi = bisect_left(starts, m.end() + offset)
        inside = [i for i in range(lo, hi) if tokens[i].text]
        if inside:
            yield part, inside


def _whole(pattern_ids: tuple[str, ...], phrase: str, inside: list[int]) -> Match:
    p = Pattern((compact_key(phrase),), pattern_ids, phrase=phrase)
    return Match(p, frozenset(inside), inside[0], inside[-1])


def _exact_parts(parts: Sequence[tuple[str, list[int]]]) -> list[Match]:
    """List items that are exactly a known spelling (today's comma-separated inputs)."""
    exact = exact_english()
    out = []
    for part, inside in parts:
        sid = exact.get(compact_key(part))
        if sid is not None:
            out.append(_whole((sid,), part, inside))
    return out


def _fuzzy_parts(parts: Sequence[tuple[str, list[int]]], matches: Sequence[Match]) -> list[Match]:
    """Short list items nothing matched, tried as one misspelled name ("skin rsh")."""
    short = [(part, inside) for part, inside in parts if len(inside) <= MAX_FUZZY_PHRASE_WORDS]
    if not short:
        return []
    covered = {p for m in matches for p in m.positions}
    out = []
    for part, inside in short:
        if covered.intersection(inside):
            continue
        sid = fuzzy_phrase(part)
        if sid is not None:
            out.append(_whole((sid,), part, inside))
    return out


def _negate_english(
    tokens: Sequence[EnToken],
    words: Sequence[str],
    clause_of: Sequence[int],
    segment_of: Sequence[int],
    matches: Sequence[Match],
    res: EnglishResources,
) -> None:
    """Mark denied symptom matches (see the module docstring for the scope rules)."""
    negation = not res.negation.isdisjoint(words)
    resolved = [m for m in matches if m.pattern.kind == "resolved"]
    if not (negation or resolved):
        return  # most texts: nothing is denied
    symptoms = [m for m in matches if m.pattern.kind == "symptom"]
    # Resolved cues ("gone", "went away") end the symptoms of their segment.
    by_segment: dict[int, list[Match]] = {}
    for s in symptoms:
        for seg in {segment_of[s.first], segment_of[s.last]}:
            by_segment.setdefault(seg, []).append(s)
    for m in resolved:
        for s in by_segment.get(segment_of[m.first], ()):
            s.negated = True
    if not negation:
        return
    consumed = {p for m in matches for p in m.positions}
    starting: dict[int, list[Match]] = {}
    inside: set[int] = set()
    for m in symptoms:
        starting.setdefault(m.first, []).append(m)
        inside.update(range(m.first, m.last + 1))
    # After a comma a denied list goes on if an "or"/"nor" comes before the clause ends.
    n = len(tokens)
    goes_on = [False] * (n + 1)
    for i in range(n - 1, -1, -1):
        t = tokens[i]
        if t.raw in _CLAUSE_PUNCT or t.text in res.terminators:
            goes_on[i] = False
        elif t.text in res.continuers:
            goes_on[i] = True
        else:
            goes_on[i] = goes_on[i + 1]

    def list_goes_on(i: int) -> bool:
        return goes_on[i + 1]

    active = False  # a negation's scope is open
    denied_any = False  # it has denied a symptom
    since = 0  # content words since the trigger or the last denied symptom
    for i, t in enumerate(tokens):
        if t.raw in _CLAUSE_PUNCT or (t.text in res.terminators and i not in consumed):
            active = False
            continue
        if t.raw == ",":
            if active and not (denied_any and since == 0 and list_goes_on(i)):
                active = False
            continue
        if not t.text:
            continue
        if t.text == "no" and i + 1 < n and tokens[i + 1].text in _ANSWER_FOLLOWS:
            continue  # "No I have a headache": an answer, not a negation
        if t.text in res.negation and i not in consumed:
            # "fever: no" / "cough - none": a bare answer after the symptom it denies.
            prev = tokens[i - 1].raw if i else ""
            after = tokens[i + 1] if i + 1 < n else None
            if prev in (":", "-", "?") and (after is None or after.raw in _SEGMENT_PUNCT):
                lo = i - 2
                while lo >= 0 and tokens[lo].raw not in _SEGMENT_PUNCT:
                    lo -= 1
                for s in by_segment.get(segment_of[i - 2], ()) if i >= 2 else ():
                    if lo < s.first and s.last < i - 1:
                        s.negated = True
            if t.text in res.continuers and active:
                continue
            active, denied_any, since = True, False, 0
            continue
        if t.text in res.continuers and active:
            continue
        if t.text in res.conjunctions:
            if active:
                nxt = tokens[i + 1] if i + 1 < n else None
                if not (denied_any and since == 0) or (
                    nxt is not None and nxt.text in res.positive
                ):
                    active = False
            continue
        if i in starting:
            if active:
                for m in starting[i]:
                    m.negated = True
                denied_any, since = True, 0
            continue
        if active and i not in inside and t.text not in res.stop and t.text not in res.known:
            since += 1
            if since > 3:
                active = False


def _english_not_understood(
    text: str,
    tokens: Sequence[EnToken],
    segment_of: Sequence[int],
    matches: Sequence[Match],
    res: EnglishResources,
    offset: int,
) -> list[str]:
    """Segments with a word nothing understood and no symptom, as typed."""
    symptoms = [m for m in matches if m.pattern.kind == "symptom"]
    understood = {segment_of[p] for m in symptoms for p in m.positions}  # segments with one
    by_segment: dict[int, list[int]] = {}  # the word tokens of each segment with no symptom
    for i, t in enumerate(tokens):
        if t.text and segment_of[i] not in understood:
            by_segment.setdefault(segment_of[i], []).append(i)
    if not by_segment:
        return []
    covered = {p for m in matches for p in m.positions}
    out = []
    for idx in by_segment.values():
        content = [
            i
            for i in idx
            if i not in covered
            and len(tokens[i].text) > 1
            and tokens[i].text not in res.known
            and not tokens[i].text[0].isdigit()
            and tokens[i].text not in res.conjunctions
        ]
        if content:
            words = [i for i in idx if tokens[i].text not in res.conjunctions] or idx
            lo, hi = tokens[words[0]].start - offset, tokens[words[-1]].end - offset
            out.append(report(text[lo:hi]))
    return out


# -- scoring ------------------------------------------------------------------------------------


def _ids(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return [str(v) for v in value]  # type: ignore[union-attr]


def score(rows: Iterable[Mapping[str, object]]) -> dict[str, float | int]:
    """Micro F1 over present ids, denied-reported-present errors and exact sentences.

    Each row has ``text``, gold ``present`` and ``absent`` (``;``-separated or sequences) and
    optionally ``language``. Tests and the bench share this one implementation.
    """
    tp = fp = fn = denied_present = exact = n = 0
    absent_tp = absent_fn = 0
    for row in rows:
        parsed = parse_symptoms(str(row["text"]), row.get("language"))  # type: ignore[arg-type]
        gold_present, gold_absent = set(_ids(row["present"])), set(_ids(row.get("absent")))
        got = set(parsed.present)
        tp += len(got & gold_present)
        fp += len(got - gold_present)
        fn += len(gold_present - got)
        denied_present += len(got & gold_absent)
        absent_tp += len(set(parsed.absent) & gold_absent)
        absent_fn += len(gold_absent - set(parsed.absent))
        exact += got == gold_present and set(parsed.absent) == gold_absent
        n += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": n,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "denied_reported_present": denied_present,
        "absent_recall": absent_tp / (absent_tp + absent_fn) if absent_tp + absent_fn else 1.0,
        "exact_sentence_accuracy": exact / n if n else 1.0,
    }


def read_rows(path: str | Path, split: str | None = None) -> list[dict[str, str]]:
    """Rows of a free-text test set (TSV: ``split``, ``text``, ``present``, ``absent``)."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if split is None or r["split"] == split]
