"""Korean analysis for :mod:`symptom_dx.free_text`: Kiwi's morphemes, clauses and negation.

Kiwi (``kiwipiepy``, its model in the ``kiwipiepy-model`` package: nothing is fetched at run
time) is created once, on the first Korean text, under a lock; its user dictionary is filled
before anyone else sees it and never changed afterwards, and from then on one instance serves
every thread (Kiwi >= 0.22 documents a shared instance as thread-safe).

Kiwi's built-in dictionaries are left out (``KIWI_OPTIONS``): the default and multi-word
dictionaries add proper nouns from Wikipedia and WikiData that symptoms never need. Measured with
``bench/free_text_bench.py`` in a fresh process: Kiwi as it comes adds ~495 MiB of RSS and loads
in ~3.5 s; as configured here, with the Korean lexicon, ~245 MiB in ~1.5 s (the model server's
pod has 512 MiB). The few words Kiwi's model splits wrongly for us are in
``lay_terms/ko_words.csv``.
"""

from __future__ import annotations

import csv
import re
import threading
import time
import warnings
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from symptom_dx.errors import SymptomDxError
from symptom_dx.free_text import (
    HANGUL,
    Findings,
    Lexicon,
    Match,
    Pattern,
    StreamWord,
    analyse_english,
    exact_english,
    expand,
    keep_longest,
    lay_terms_file,
    read_cues,
    read_lay_terms,
    report,
    tokenize_english,
    used_id,
)
from symptom_dx.i18n import translations
from symptom_dx.vocabulary import compact_key

KIWI_OPTIONS: dict[str, Any] = {
    "num_workers": 0,  # analyse in the calling thread: no pool
    "model_type": "cong",
    "load_default_dict": False,
    "load_multi_dict": False,
    "load_typo_dict": False,
}
# Connective endings that end a clause ("아프고 | 열이", "없는데 | 목이"); "-지" (토하지 않아요),
# "-게", "-어" before an auxiliary do not.
BOUNDARY_ENDINGS = frozenset(
    {"고", "는데", "은데", "ᆫ데", "ㄴ데", "데", "지만", "어서", "아서", "서", "니까", "으니까",
     "니", "으니", "면서", "으면서", "며", "으며", "다가", "더니", "어도", "아도", "면", "으면",
     "거든", "는지", "ᆫ지"}
)  # fmt: skip
PREDICATES = frozenset({"VV", "VA", "VX", "VCN", "VCP", "XSV", "XSA"})
CONTENT = frozenset({"NNG", "NNP", "VV", "VA", "XR", "VCN", "MAG"})
CUE_TAGS = frozenset({"MAG", "VA", "VX", "VCN", "XR", "VV"})
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9'’/&+\- ]*[A-Za-z0-9]|[A-Za-z]")
_PARENTHESES = re.compile(r"\s*\(([^)]*)\)\s*")
_LIST_PARTS = re.compile(r"[^,;\n]+")


@dataclass(frozen=True)
class KoreanResources:
    """Kiwi and what Korean analysis needs, built once."""

    kiwi: Any
    blocklist: Any  # Kiwi's MorphemeSet of ko_words.csv's blocked words
    lexicon: Lexicon
    negation: frozenset[str]
    negation_adverb: frozenset[str]
    resolved: frozenset[str]
    stop: frozenset[str]
    filler: frozenset[str]
    labels: dict[str, str]  # whitespace-free, case-folded Korean label -> id
    load_seconds: float


_lock = threading.Lock()
_resources: KoreanResources | None = None


def korean_resources() -> KoreanResources:
    """Kiwi and the Korean lexicon, built on first use (thread-safe, once)."""
    global _resources
    if _resources is None:
        with _lock:
            if _resources is None:
                _resources = _build()
    return _resources


def kiwi_loaded() -> bool:
    """Whether Kiwi has been loaded in this process (it is only loaded for Korean text)."""
    return _resources is not None


def _new_kiwi() -> tuple[Any, Any]:
    """Kiwi with the user words of ``ko_words.csv`` added, and its morphemes to refuse."""
    try:
        from kiwipiepy import Kiwi, MorphemeSet
    except ImportError:
        raise SymptomDxError(
            "reading Korean text needs Kiwi: install symptom-dx with its 'text' extra"
        ) from None

    with warnings.catch_warnings():
        # num_workers=0 warns that its meaning changed in 0.21 (it now means: no thread pool).
        warnings.simplefilter("ignore", DeprecationWarning)
        kiwi = Kiwi(**KIWI_OPTIONS)
    blocked = []
    for row in csv.DictReader(lay_terms_file("ko_words.csv")):
        if row["action"] == "add":  # a word Kiwi's model splits ("두통도" -> 두/MM 통/NNB)
            kiwi.add_user_word(row["form"], row["tag"], 0.0)
        else:  # a word that hides a symptom ("열나고", "열없고": 열 + 나다 / 없다)
            blocked.append(f"{row['form']}/{row['tag']}")
    blocklist = MorphemeSet(kiwi, blocked)
    kiwi.tokenize("", blocklist=blocklist)  # Kiwi finishes loading on its first analysis
    return kiwi, blocklist


def _build() -> KoreanResources:
    started = time.perf_counter()
    kiwi, blocklist = _new_kiwi()
    cues = read_cues("ko")
    negation = frozenset(cues["negation"])
    negation_adverb = frozenset(cues["negation_adverb"])
    resolved = frozenset(cues["resolved"])
    stop = frozenset(cues["stop"])
    skeleton = KoreanResources(
        kiwi, blocklist, Lexicon(()), negation, negation_adverb, resolved, stop,
        frozenset(cues["filler"]), {}, 0.0,
    )  # fmt: skip
    never_gap = negation | negation_adverb
    patterns: list[Pattern] = []

    def add(phrase: str, ids: tuple[str, ...], kind: str = "symptom") -> None:
        tokens = kiwi.tokenize(phrase, blocklist=blocklist)
        layout = _layout(tokens, phrase)
        stream = _stream(tokens, layout, skeleton)
        keys = tuple(w.key for w in stream)
        patterns.append(
            Pattern(
                keys,
                ids,
                kind,
                contiguous=kind != "symptom" or bool(set(keys) & never_gap),
                cross_clause=len({w.clause for w in stream}) > 1,
                generic_fever=ids == ("high_fever",) and "고열" not in keys,
                phrase=phrase,
            )
        )

    labels = korean_labels()
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    for key, (label, sid) in labels.items():
        del key
        tokens = kiwi.tokenize(label, blocklist=blocklist)
        keys = tuple(w.key for w in _stream(tokens, _layout(tokens, label), skeleton))
        if keys and seen.setdefault(keys, (sid,)) == (sid,):
            add(label, (sid,))
    for raw, ids in read_lay_terms("ko"):
        for phrase in expand(raw, "ko"):
            add(phrase, ids)
    for phrase in cues["pseudo"]:
        add(phrase, (), "pseudo")
    return KoreanResources(
        kiwi=kiwi,
        blocklist=blocklist,
        lexicon=Lexicon(_drop_light_verbs(_first_label_wins(patterns, labels))),
        negation=negation,
        negation_adverb=negation_adverb,
        resolved=resolved,
        stop=stop,
        filler=frozenset(cues["filler"]),
        labels={k: sid for k, (_, sid) in labels.items()},
        load_seconds=time.perf_counter() - started,
    )


def _first_label_wins(patterns: list[Pattern], labels: dict[str, tuple[str, str]]) -> list[Pattern]:
    """Two Korean labels may analyse alike; the first keeps the reading (lay terms may not
    clash: Lexicon refuses them)."""
    label_texts = {label for label, _ in labels.values()}
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    out = []
    for p in patterns:
        if p.phrase in label_texts and seen.setdefault(p.keys, p.ids) != p.ids:
            continue
        out.append(p)
    return out


LIGHT_VERBS = frozenset({"나", "나오", "하", "있", "생기", "들"})


def _drop_light_verbs(patterns: list[Pattern]) -> list[Pattern]:
    """A noun and a light verb ("가래가 나와요") say no more than the noun: drop such
    patterns, so that a longer phrase holding the noun ("피 섞인 가래") is not read twice."""
    known = {(p.keys, p.ids) for p in patterns}
    return [
        p
        for p in patterns
        if not (len(p.keys) > 1 and p.keys[-1] in LIGHT_VERBS and (p.keys[:-1], p.ids) in known)
    ]


@cache
def korean_labels() -> dict[str, tuple[str, str]]:
    """Whitespace-free, case-folded Korean label (and each part of "A(B)") -> (text, id), as
    ``Translations.understand`` reads them."""
    out: dict[str, tuple[str, str]] = {}
    for sid, label in translations("ko").symptoms.items():
        for part in (label, _PARENTHESES.sub(" ", label), *_PARENTHESES.findall(label)):
            key = "".join(part.casefold().split())
            if key:
                out.setdefault(key, (part.strip(), used_id(sid)))
    return out


# -- analysis -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    clause: list[int]  # negation and matching stay within a clause
    sentence: list[int]  # patterns built across clauses stay within a sentence
    segment: list[int]  # reported as one span not understood


def _base(tag: Any) -> str:
    return str(tag).split("-", 1)[0]


def _aux_follows(tokens: Sequence[Any], i: int) -> bool:
    """An auxiliary predicate follows: the ending binds, it does not end a clause."""
    nxt = [_base(t.tag) for t in tokens[i + 1 : i + 3]]
    return bool(nxt) and (nxt[0] == "VX" or (nxt[0] == "JX" and nxt[1:2] == ["VX"]))


def _layout(tokens: Sequence[Any], text: str) -> Layout:
    clause = sentence = segment = 0
    predicate = False
    layout = Layout([], [], [])
    prev_end = 0
    for i, t in enumerate(tokens):
        base = _base(t.tag)
        if i and "\n" in text[prev_end : t.start]:
            clause, sentence, segment, predicate = clause + 1, sentence + 1, segment + 1, False
        if base == "MAJ":  # 그리고, 근데, 하지만
            clause, segment, predicate = clause + 1, segment + 1, False
        layout.clause.append(clause)
        layout.sentence.append(sentence)
        layout.segment.append(segment)
        prev_end = t.start + t.len
        predicate = predicate or base in PREDICATES
        if base in ("EF", "SF", "SE"):
            clause, sentence, segment, predicate = clause + 1, sentence + 1, segment + 1, False
        elif (base == "EC" and t.form in BOUNDARY_ENDINGS and not _aux_follows(tokens, i)) or (
            base == "NNB" and t.form == "데" and i and _base(tokens[i - 1].tag) == "ETM"
        ):
            clause, segment, predicate = clause + 1, segment + 1, False
        elif base == "SP":
            # "열, 기침 없어요" lists nouns under one predicate; after a predicate a comma ends
            # the clause ("목 따가움, 근육통 있어요").
            segment += 1
            if predicate:
                clause, predicate = clause + 1, False
    return layout


def _stream(tokens: Sequence[Any], layout: Layout, res: KoreanResources) -> list[StreamWord]:
    """The words the matcher sees: content morphemes' forms, particles and endings dropped."""
    out = []
    prefix = ""
    for i, t in enumerate(tokens):
        base, form = _base(t.tag), prefix + t.form
        prefix = ""
        if base == "XPN":  # 무기력, 불규칙, 헛구역질: the prefix belongs to the word
            prefix = form
            continue
        if base == "MAG":
            keep = form not in res.stop
        elif base in ("NNG", "NNP", "VV", "VA", "XR", "VCN"):
            keep = True
            if base == "VA" and len(form) >= 3 and form.endswith("하"):
                form = form[:-1]  # 뻣뻣하/VA reads as 뻣뻣/XR + 하/XSA elsewhere
        elif base == "VX":
            keep = form in res.negation
        elif base == "NNB":
            keep = form in ("것", "거", "수")
        elif base == "NR":
            keep = form == "열"  # "열 없음": Kiwi may read fever as the numeral ten
        else:
            keep = False
        if keep:
            out.append(StreamWord(form, i, layout.clause[i], layout.sentence[i]))
    return out


def analyse_korean(text: str) -> Findings:
    """Korean (or mixed) text -> matches (denied ones marked) and spans not understood."""
    res = korean_resources()
    tokens = res.kiwi.tokenize(text, blocklist=res.blocklist)
    if not tokens:
        return Findings()
    layout = _layout(tokens, text)
    stream = _stream(tokens, layout, res)
    starts = [t.start for t in tokens]
    matches = _exact_parts(text, tokens, starts, res)
    matches += res.lexicon.find(stream)
    english, spans = _latin_runs(text, tokens, starts)
    matches = keep_longest(matches + english)
    _negate(stream, layout, matches, res)
    spans += _not_understood(text, tokens, layout, stream, matches, res)
    return Findings(matches, spans)


def _tokens_in(tokens: Sequence[Any], starts: Sequence[int], lo: int, hi: int) -> list[int]:
    """Indices of the tokens overlapping characters lo..hi (``starts``: the tokens' starts)."""
    first = max(bisect_left(starts, lo) - 1, 0)
    last = bisect_left(starts, hi)
    return [i for i in range(first, last) if tokens[i].start + tokens[i].len > lo]


def _exact_parts(
    text: str, tokens: Sequence[Any], starts: Sequence[int], res: KoreanResources
) -> list[Match]:
    """List items that are exactly a Korean label (or an English spelling)."""
    out = []
    for m in _LIST_PARTS.finditer(text):
        part = m.group()
        if not part.strip():
            continue
        sid = res.labels.get("".join(part.casefold().split()))
        if sid is None and not HANGUL.search(part):
            sid = exact_english().get(compact_key(part))
        inside = _tokens_in(tokens, starts, m.start(), m.end())
        if sid is not None and inside:
            p = Pattern((part.strip(),), (sid,), phrase=part.strip())
            out.append(Match(p, frozenset(inside), inside[0], inside[-1]))
    return out


def _latin_runs(
    text: str, tokens: Sequence[Any], starts: Sequence[int]
) -> tuple[list[Match], list[str]]:
    """Runs of Latin letters read as English; their matches re-placed on Kiwi's tokens so that
    Korean negation reaches them too ("rash는 없어요")."""
    matches: list[Match] = []
    spans: list[str] = []
    for run in _LATIN.finditer(text):
        found = analyse_english(run.group(), offset=run.start())
        spans += found.not_understood
        en_tokens = tokenize_english(run.group(), run.start())
        for m in found.matches:
            if m.pattern.kind != "symptom":
                continue
            lo = min(en_tokens[p].start for p in m.positions)
            hi = max(en_tokens[p].end for p in m.positions)
            inside = _tokens_in(tokens, starts, lo, hi)
            if inside:
                matches.append(
                    Match(m.pattern, frozenset(inside), inside[0], inside[-1], m.negated)
                )
    return matches, spans


def _negate(
    stream: Sequence[StreamWord], layout: Layout, matches: Sequence[Match], res: KoreanResources
) -> None:
    """Korean negation reaches back over its clause; 안/못 also the predicate right after."""
    consumed = {p for m in matches for p in m.positions}
    by_clause: dict[int, list[Match]] = {}
    starting: dict[int, Match] = {}
    for m in matches:
        if m.pattern.kind == "symptom":
            by_clause.setdefault(layout.clause[m.last], []).append(m)
            starting.setdefault(m.first, m)
    for k, w in enumerate(stream):
        if w.position in consumed:
            continue
        before = w.key in res.negation or w.key in res.resolved
        adverb = w.key in res.negation_adverb
        if not (before or adverb):
            continue
        for m in by_clause.get(w.clause, ()):
            if m.first < w.position:
                m.negated = True
        if adverb:  # "안 토해요"
            for s in stream[k + 1 : k + 3]:
                if s.clause == w.clause and s.position in starting:
                    starting[s.position].negated = True
                    break


def _not_understood(
    text: str,
    tokens: Sequence[Any],
    layout: Layout,
    stream: Sequence[StreamWord],
    matches: Sequence[Match],
    res: KoreanResources,
) -> list[str]:
    covered = {p for m in matches for p in m.positions}
    symptom_at = {p for m in matches if m.pattern.kind == "symptom" for p in m.positions}
    cues = res.negation | res.negation_adverb | res.resolved | res.filler | res.stop
    content = {
        w.position
        for w in stream
        if w.position not in covered
        and w.key not in cues
        and _base(tokens[w.position].tag) in CONTENT
    }
    by_segment: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        if _base(t.tag) not in ("SP", "SF", "SE", "SS", "SL", "SW", "SO"):
            by_segment.setdefault(layout.segment[i], []).append(i)
    out = []
    for idx in by_segment.values():
        if symptom_at.intersection(idx) or not content.intersection(idx):
            continue
        lo, hi = tokens[idx[0]].start, tokens[idx[-1]].start + tokens[idx[-1]].len
        out.append(report(text[lo:hi]))
    return out
