"""What the page does, as plain functions: they take the model client and the knowledge tables,
and return data ready to show. ``ui.app`` wires them to Gradio; tests call them directly.

Two steps are kept apart so that switching language never calls the model again:
``diagnose``/``answer`` ask the model server and return an ``Outcome`` (ids and canonical names
only), and ``render`` turns an ``Outcome`` into text, HTML and bar values in one language.

"Too thin to separate candidates" (shown above the ranking) means any of:

- fewer than ``MIN_SYMPTOMS`` (3) symptoms given: the dataset's diseases have 3-17 typical
  symptoms each, and with one or two many of them share everything that was said;
- the best candidate's probability is below ``MIN_TOP_PROBABILITY`` (0.5);
- the best candidate leads the second by less than ``MIN_MARGIN`` (0.2).

Urgent-care advice appears when a given symptom weighs ``URGENT_SEVERITY`` (7, the top of the
severity table's 1-7 scale) or more; see ``symptom_dx.knowledge``. It does not depend on the
model server and is shown even when the server is down.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from symptom_dx import contract
from symptom_dx.i18n import DEFAULT_LANGUAGE, LANGUAGES, Translations, translations
from symptom_dx.knowledge import URGENT_SEVERITY, Knowledge
from symptom_dx.vocabulary import vocabulary
from ui.client import (
    Candidate,
    ModelClient,
    ModelServerRejected,
    ModelServerUnavailable,
    Prediction,
)
from ui.metrics import REQUESTS

log = logging.getLogger(__name__)

MIN_SYMPTOMS = 3
MAX_FREE_TEXT = 500  # characters of free text matched to symptoms
MIN_TOP_PROBABILITY = 0.5
MIN_MARGIN = 0.2
DESCRIPTION_CHARS = 260

# Outcome.status values
IDLE, EMPTY, OK, UNAVAILABLE, REJECTED = "idle", "empty", "ok", "unavailable", "rejected"


@dataclass(frozen=True)
class Outcome:
    """The result of one submission, in ids and canonical names (no language)."""

    status: str = IDLE
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    prediction: Prediction | None = None
    detail: str = ""  # the server's message, for UNAVAILABLE and REJECTED
    thin: tuple[str, ...] = ()  # "few" and/or "unsure"
    urgent: tuple[str, ...] = ()  # given symptoms at or above the urgent severity

    @property
    def question(self) -> str | None:
        """The next symptom to ask about, unless it was already answered."""
        if self.status != OK or self.prediction is None:
            return None
        q = self.prediction.next_question
        return q if q and q not in self.present and q not in self.absent else None


@dataclass
class View:
    """Everything the page shows for one Outcome in one language."""

    ranking: dict[str, float] | None = None  # display name -> probability, best first
    ranking_html: str = ""  # the same as labelled probability bars
    status_html: str = ""
    notes_html: str = ""
    question_md: str = ""
    show_question: bool = False
    details_html: str = ""
    extra: dict[str, str] = field(default_factory=dict)


# -- what the page sends ------------------------------------------------------------------------
# The page's events take their inputs unchecked by Gradio (whose refusal of a value outside a
# picker's choices prints the value to the log): these keep what the page can offer.
def chosen_symptoms(values: Sequence[str] | None) -> list[str]:
    """The selectable symptom ids among ``values`` (anything else is dropped, unlogged)."""
    selectable = _selectable_ids()
    if not isinstance(values, list | tuple):
        return []
    return [v for v in values if isinstance(v, str) and v in selectable]


def chosen_language(value: object) -> str:
    """``value`` if it is a language the page offers, else the default."""
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


def denied_symptoms(*groups: Sequence[str] | None) -> tuple[str, ...]:
    """The selectable ids of ``groups`` (the page's denied symptoms), once each, in order."""
    return tuple(dict.fromkeys(s for group in groups for s in chosen_symptoms(group)))


def _selectable_ids() -> frozenset[str]:
    return frozenset(s.id for s in vocabulary().selectable)


# -- picking symptoms ---------------------------------------------------------------------------
def picker_choices(language: str = DEFAULT_LANGUAGE) -> list[tuple[str, str]]:
    """(display label, symptom id) for every selectable symptom, shortest label first.

    Gradio's picker filters by substring and Enter takes the first match: with shorter labels
    first, typing a whole name ("Itching") and Enter takes that symptom, never a longer one
    that contains it ("Internal itching").
    """
    tr = translations(language)
    choices = [(tr.symptom(s.id), s.id) for s in vocabulary().selectable]
    return sorted(choices, key=lambda c: (len(c[0]), c[0].casefold()))


def add_free_text(
    client: ModelClient,
    text: str,
    chosen: Sequence[str] | None,
    denied: Sequence[str] | None = (),
    language: str = DEFAULT_LANGUAGE,
) -> tuple[list[str], tuple[str, ...], str, str]:
    """Read free text into symptoms; returns (chosen ids, denied ids, message, text left in the
    box: "" once read, the text itself when the model server could not read it).

    The model server's parser model (``ModelClient.parse``: ``symptom_dx.free_text``'s parser,
    so the page holds no Korean analyser of its own) reads sentences and lists, English or
    Korean (mixed text too, so the page's language is not passed as a hint), with negation.
    Symptoms the text
    says a person has are added to ``chosen`` (and are no longer denied); those it says they do
    not have are taken out of ``chosen`` and added to ``denied``, which the next submission sends
    as the request's ``absent`` input. Picking a denied symptom again overrides the denial
    (``diagnose`` drops a denied symptom that is also present). The message (markdown) says, in
    ``language``, what was understood, what was not and what was denied.
    """
    tr = translations(language)
    chosen = list(chosen or [])
    denied = [s for s in (denied or ()) if s not in chosen]
    # A person types a few sentences; a pasted essay is cut short rather than read slowly.
    text = (text or "")[:MAX_FREE_TEXT]
    if not text.strip():
        REQUESTS.labels("free_text", "not_understood").inc()
        return chosen, tuple(denied), _md_escape(tr.text("nothing_understood")), ""
    try:
        parsed = client.parse(text)
    except ModelServerUnavailable as e:
        log.warning("model server unavailable: %s", e)
        REQUESTS.labels("free_text", UNAVAILABLE).inc()
        return chosen, tuple(denied), _md_escape(tr.text("server_down")), text
    except ModelServerRejected as e:
        REQUESTS.labels("free_text", REJECTED).inc()
        return chosen, tuple(denied), _md_escape(tr.text("server_rejected", detail=str(e))), text
    selectable = _selectable_ids()
    present = [s for s in parsed.present if s in selectable]
    absent = [s for s in parsed.absent if s in selectable]
    understood = present or absent
    REQUESTS.labels("free_text", "ok" if understood else "not_understood").inc()
    for sid in present:
        if sid not in chosen:
            chosen.append(sid)
        if sid in denied:
            denied.remove(sid)
    for sid in absent:
        if sid in chosen:
            chosen.remove(sid)
        if sid not in denied:
            denied.append(sid)
    lines = []
    if present:
        lines.append(tr.text("understood", items=", ".join(tr.symptom(s) for s in present)))
    if parsed.not_understood:
        missed = ", ".join(f'"{m}"' for m in parsed.not_understood)
        lines.append(tr.text("not_understood", items=missed))
    if absent:
        lines.append(tr.text("text_denied", items=", ".join(tr.symptom(s) for s in absent)))
    if not understood and not parsed.not_understood:
        lines.append(tr.text("nothing_understood"))
    return chosen, tuple(denied), "\n\n".join(_md_escape(line) for line in lines), ""


# -- asking the model ---------------------------------------------------------------------------
def diagnose(
    client: ModelClient,
    knowledge: Knowledge,
    present: Sequence[str] | None,
    absent: Sequence[str] | None = (),
    top_k: int = contract.DEFAULT_TOP_K,
) -> Outcome:
    """Ask the model server for the ranked differential of ``present`` (minus ``absent``)."""
    present = tuple(dict.fromkeys(present or ()))
    absent = tuple(s for s in dict.fromkeys(absent or ()) if s not in present)
    if not present:
        REQUESTS.labels("diagnose", EMPTY).inc()
        return Outcome(EMPTY, present, absent)
    urgent = tuple(knowledge.urgent(list(present), URGENT_SEVERITY))
    try:
        prediction = client.infer(present, absent, top_k=top_k)
    except ModelServerUnavailable as e:
        log.warning("model server unavailable: %s", e)
        REQUESTS.labels("diagnose", UNAVAILABLE).inc()
        return Outcome(UNAVAILABLE, present, absent, detail=str(e), urgent=urgent)
    except ModelServerRejected as e:
        REQUESTS.labels("diagnose", REJECTED).inc()
        return Outcome(REJECTED, present, absent, detail=str(e), urgent=urgent)
    REQUESTS.labels("diagnose", OK).inc()
    return Outcome(
        OK, present, absent, prediction, thin=thin_reasons(present, prediction), urgent=urgent
    )


def answer(
    client: ModelClient,
    knowledge: Knowledge,
    present: Sequence[str] | None,
    absent: Sequence[str] | None,
    question: str | None,
    has_it: bool,
    top_k: int = contract.DEFAULT_TOP_K,
) -> Outcome:
    """Record a yes/no answer to ``question`` and ask again with it."""
    present, absent = list(present or ()), list(absent or ())
    if question:
        if has_it and question not in present:
            present.append(question)
        if not has_it and question not in absent:
            absent.append(question)
    REQUESTS.labels("answer", "yes" if has_it else "no").inc()
    return diagnose(client, knowledge, present, absent, top_k)


def thin_reasons(present: Sequence[str], prediction: Prediction) -> tuple[str, ...]:
    """Why the input is too thin to separate the candidates ("few", "unsure"), or fits no
    disease pattern ("no_pattern"), if it does."""
    reasons = []
    if prediction.out_of_pattern:
        reasons.append("no_pattern")
    if len(present) < MIN_SYMPTOMS:
        reasons.append("few")
    probs = [c.probability for c in prediction.candidates] + [0.0, 0.0]
    if probs[0] < MIN_TOP_PROBABILITY or probs[0] - probs[1] < MIN_MARGIN:
        reasons.append("unsure")
    return tuple(reasons)


def server_status(client: ModelClient, language: str = DEFAULT_LANGUAGE) -> str:
    """A one-line markdown status of the model server, for the page's status line."""
    tr = translations(language)
    return tr.text("server_ready") if client.ready() else tr.text("server_not_ready")


def server_line(outcome: Outcome, language: str = DEFAULT_LANGUAGE) -> str | None:
    """The status line a submission implies (None: it says nothing about the server)."""
    tr = translations(language)
    if outcome.status == UNAVAILABLE:
        return tr.text("server_not_ready")
    if outcome.status in (OK, REJECTED):
        return tr.text("server_ready")
    return None


# -- showing ------------------------------------------------------------------------------------
def render(outcome: Outcome, knowledge: Knowledge, language: str = DEFAULT_LANGUAGE) -> View:
    """Text, HTML and bar values for ``outcome`` in ``language``."""
    tr = translations(language)
    view = View()
    notes = []
    if outcome.urgent:
        items = ", ".join(tr.symptom(s) for s in outcome.urgent)
        notes.append(_box("urgent", tr.text("urgent_title"), tr.text("urgent_text", items=items)))
    if outcome.status == EMPTY:
        view.status_html = _box("info", "", tr.text("need_symptom"))
    elif outcome.status == UNAVAILABLE:
        view.status_html = _box(
            "down", tr.text("server_down_title"), tr.text("server_down"), detail=outcome.detail
        )
    elif outcome.status == REJECTED:
        view.status_html = _box("down", "", tr.text("server_rejected", detail=outcome.detail))
    if outcome.status != OK or outcome.prediction is None:
        view.notes_html = "".join(notes)
        return view

    candidates = outcome.prediction.candidates
    if outcome.thin:
        lines = []
        if "no_pattern" in outcome.thin:
            lines.append(tr.text("thin_no_pattern"))
        if "few" in outcome.thin:
            lines.append(tr.text("thin_few", count=len(outcome.present), minimum=MIN_SYMPTOMS))
        if "unsure" in outcome.thin:
            second = candidates[1].probability if len(candidates) > 1 else 0.0
            lines.append(
                tr.text("thin_unsure", top=_pct(candidates[0].probability), second=_pct(second))
            )
        notes.append(_box("thin", tr.text("thin_title"), *lines))
    if outcome.absent:
        denied = ", ".join(tr.symptom(s) for s in outcome.absent)
        notes.append(_box("info", "", tr.text("denied", items=denied)))
    view.notes_html = "".join(notes)
    view.ranking = {tr.disease(c.disease): round(c.probability, 4) for c in candidates}
    view.ranking_html = _ranking(candidates, tr)
    if outcome.question:
        view.show_question = True
        view.question_md = f"### {tr.text('question_title')}\n\n" + tr.text(
            "question", symptom=_md_escape(tr.symptom(outcome.question))
        )
    view.details_html = _details(candidates, knowledge, tr)
    return view


def _ranking(candidates: Sequence[Candidate], tr: Translations) -> str:
    rows = "".join(
        f'<li data-disease="{_e(c.disease)}"><span class="sdx-name">{_e(tr.disease(c.disease))}'
        f'</span><span class="sdx-pct">{_e(tr.text("probability", percent=_pct(c.probability)))}'
        f'</span><div class="sdx-bar"><div style="width:{c.probability * 100:.1f}%"></div></div>'
        "</li>"
        for c in candidates
    )
    return f'<div class="sdx-ranking"><h3>{_e(tr.text("ranking_label"))}</h3><ol>{rows}</ol></div>'


def _details(candidates: Sequence[Candidate], knowledge: Knowledge, tr: Translations) -> str:
    parts = ['<div class="sdx-details">']
    note = tr.text("data_language_note")
    if note:
        parts.append(f'<p class="sdx-note">{_e(note)}</p>')
    for rank, c in enumerate(candidates, start=1):
        description = _short(knowledge.description(c.disease)) or tr.text("no_description")
        precautions = "".join(f"<li>{_e(p)}</li>" for p in knowledge.precautions(c.disease))
        none = f'<span class="sdx-none">{_e(tr.text("none"))}</span>'
        supporting = ", ".join(_e(tr.symptom(s)) for s in c.supporting) or none
        missing = ", ".join(_e(tr.symptom(s)) for s in c.missing) or none
        percent = tr.text("probability", percent=_pct(c.probability))
        parts.append(
            f'<section class="sdx-card" data-disease="{_e(c.disease)}">'
            f'<h3><span class="sdx-rank">{rank}.</span> {_e(tr.disease(c.disease))} '
            f'<span class="sdx-pct">{_e(percent)}</span></h3>'
            f'<div class="sdx-bar"><div style="width:{c.probability * 100:.1f}%"></div></div>'
            f'<p class="sdx-desc" lang="en"><b>{_e(tr.text("description_heading"))}:</b> '
            f"{_e(description)}</p>"
            f'<div class="sdx-compare"><b>{_e(tr.text("comparison_heading"))}</b>'
            f'<p class="sdx-supporting">✔ {_e(tr.text("supporting"))}: {supporting}</p>'
            f'<p class="sdx-missing">✘ {_e(tr.text("missing"))}: {missing}</p></div>'
            + (
                f'<div class="sdx-precautions" lang="en"><b>{_e(tr.text("precautions_heading"))}'
                f"</b><ul>{precautions}</ul></div>"
                if precautions
                else ""
            )
            + "</section>"
        )
    parts.append("</div>")
    return "".join(parts)


def _box(kind: str, title: str, *lines: str, detail: str = "") -> str:
    """A note box: a bold title, lines of text and an optional technical detail in small."""
    body = "".join(f"<p>{_e(line)}</p>" for line in lines if line)
    if detail:
        body += f'<p class="sdx-detail">{_e(detail)}</p>'
    head = f"<strong>{_e(title)}</strong>" if title else ""
    return f'<div class="sdx-box sdx-{kind}" role="status">{head}{body}</div>'


def _short(text: str) -> str:
    """The first sentences of a description, up to about DESCRIPTION_CHARS characters."""
    text = " ".join(text.split())
    if len(text) <= DESCRIPTION_CHARS:
        return text
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if out and len(out) + len(sentence) > DESCRIPTION_CHARS:
            break
        out = f"{out} {sentence}".strip()
    return out if len(out) <= DESCRIPTION_CHARS + 80 else out[:DESCRIPTION_CHARS].rstrip() + "…"


def _pct(p: float) -> str:
    """A whole percentage, with "<1" and ">99" rather than a misleading "0" or "100"."""
    if 0 < p < 0.005:
        return "<1"
    if 0.995 < p < 1:
        return ">99"
    return f"{p * 100:.0f}"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)
