"""The Gradio page: components wired to the plain functions of ``ui.callbacks``.

Element ids (``elem_id``) are stable: the browser test and any user stylesheet rely on them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from symptom_dx import contract
from symptom_dx.i18n import DEFAULT_LANGUAGE, LANGUAGES, translations
from symptom_dx.knowledge import Knowledge
from ui import callbacks
from ui.callbacks import Outcome
from ui.client import ModelClient

# How often an open page re-checks whether the model server answers (seconds).
STATUS_EVERY = 10.0

CSS = """
#sdx-disclaimer {border-left: 4px solid #b45309; background: #fffbeb; padding: 8px 12px;
  border-radius: 6px; color: #451a03}
.sdx-box {border-radius: 6px; padding: 8px 12px; margin: 6px 0}
.sdx-box p {margin: 4px 0}
.sdx-urgent {background: #fef2f2; border-left: 4px solid #b91c1c; color: #450a0a}
.sdx-down {background: #fef2f2; border-left: 4px solid #b91c1c; color: #450a0a}
.sdx-thin {background: #fffbeb; border-left: 4px solid #d97706; color: #451a03}
.sdx-info {background: #eff6ff; border-left: 4px solid #2563eb; color: #172554}
.sdx-detail {font-size: 0.8em; opacity: 0.75}
.sdx-ranking h3 {margin: 0 0 6px 0; font-size: 1em}
.sdx-ranking ol {list-style: none; margin: 0; padding: 0}
.sdx-ranking li {margin: 0 0 8px 0}
.sdx-ranking .sdx-bar {margin: 2px 0 0 0}
.sdx-card {border: 1px solid #d1d5db; border-radius: 8px; padding: 10px 14px; margin: 10px 0}
.sdx-card h3 {margin: 0 0 6px 0; font-size: 1.1em}
.sdx-pct {float: right; font-weight: normal; color: #374151}
.sdx-bar {background: #e5e7eb; border-radius: 4px; height: 8px; margin-bottom: 8px}
.sdx-bar > div {background: #2563eb; height: 8px; border-radius: 4px}
.sdx-card p {margin: 4px 0}
.sdx-card ul {margin: 2px 0 0 20px}
.sdx-supporting {color: #166534}
.sdx-missing {color: #6b7280}
.sdx-none {font-style: italic}
.sdx-note {font-style: italic; color: #4b5563}
#sdx-question {padding: 4px 12px}
"""


def build_app(
    client: ModelClient,
    knowledge: Knowledge,
    top_k: int = contract.DEFAULT_TOP_K,
    status_every: float = STATUS_EVERY,
) -> gr.Blocks:
    """The page. ``client`` reaches the model server; ``knowledge`` holds the side tables.

    Every event takes its inputs as sent (``preprocess=False``) and checks them with
    ``callbacks.chosen_symptoms``/``chosen_language``: Gradio's own check of a picker value
    prints the value (a symptom) to the log when it refuses it.
    """
    en = translations(DEFAULT_LANGUAGE)
    language_choices = [(translations(lang).name, lang) for lang in LANGUAGES]

    with gr.Blocks(title=en.text("title"), analytics_enabled=False) as demo:
        outcome_state = gr.State(Outcome())
        # Symptoms the person said they do not have (free text, "No" answers): sent as the
        # request's `absent` input until they pick one again or start over.
        denied_state = gr.State(())
        with gr.Row():
            with gr.Column(scale=4):
                title = gr.Markdown(_title_md(DEFAULT_LANGUAGE), elem_id="sdx-title")
            with gr.Column(scale=1, min_width=180):
                language = gr.Radio(
                    language_choices,
                    value=DEFAULT_LANGUAGE,
                    label=en.text("language_label"),
                    elem_id="sdx-language",
                )
        disclaimer = gr.Markdown(en.text("disclaimer"), elem_id="sdx-disclaimer")
        with gr.Row():
            with gr.Column(scale=1):
                picker = gr.Dropdown(
                    choices=callbacks.picker_choices(DEFAULT_LANGUAGE),
                    value=[],
                    multiselect=True,
                    filterable=True,
                    label=en.text("picker_label"),
                    info=en.text("picker_info"),
                    elem_id="sdx-picker",
                )
                with gr.Row(equal_height=True):
                    free_text = gr.Textbox(
                        label=en.text("describe_label"),
                        placeholder=en.text("describe_placeholder"),
                        max_length=callbacks.MAX_FREE_TEXT,
                        scale=3,
                        elem_id="sdx-free-text",
                    )
                    add_text = gr.Button(
                        en.text("add_text_button"), scale=1, elem_id="sdx-add-text"
                    )
                understood = gr.Markdown("", elem_id="sdx-understood")
                with gr.Row():
                    submit = gr.Button(en.text("submit"), variant="primary", elem_id="sdx-submit")
                    clear = gr.Button(en.text("clear"), elem_id="sdx-clear")
                server = gr.Markdown("", elem_id="sdx-server")
            with gr.Column(scale=1):
                status = gr.HTML("", padding=False, elem_id="sdx-status")
                notes = gr.HTML("", padding=False, elem_id="sdx-notes")
                ranking = gr.HTML("", padding=False, elem_id="sdx-ranking")
                with gr.Group(visible=False, elem_id="sdx-question-box") as question_box:
                    question = gr.Markdown("", elem_id="sdx-question")
                    with gr.Row():
                        yes = gr.Button(en.text("yes"), variant="primary", elem_id="sdx-yes")
                        no = gr.Button(en.text("no"), elem_id="sdx-no")
        details = gr.HTML("", padding=False, elem_id="sdx-details")

        view_outputs = [status, notes, question, question_box, ranking, details]

        def show(outcome: Outcome, lang: str) -> list[Any]:
            view = callbacks.render(outcome, knowledge, lang)
            return [
                view.status_html,
                view.notes_html,
                view.question_md,
                gr.Group(visible=view.show_question),
                view.ranking_html,
                view.details_html,
            ]

        def server_update(outcome: Outcome, lang: str) -> Any:
            line = callbacks.server_line(outcome, lang)
            return gr.skip() if line is None else line

        def on_submit(present: list[str], denied: tuple[str, ...], lang: str):
            present, lang = callbacks.chosen_symptoms(present), callbacks.chosen_language(lang)
            absent = callbacks.denied_symptoms(denied)
            outcome = callbacks.diagnose(client, knowledge, present, absent, top_k)
            return [outcome, outcome.absent, server_update(outcome, lang), *show(outcome, lang)]

        def on_answer(has_it: bool):
            def handler(present: list[str], outcome: Outcome, denied: tuple[str, ...], lang: str):
                present = callbacks.chosen_symptoms(present)
                lang = callbacks.chosen_language(lang)
                absent = callbacks.denied_symptoms(outcome.absent, denied)
                new = callbacks.answer(
                    client, knowledge, present, absent, outcome.question, has_it, top_k
                )
                return [
                    new,
                    new.absent,
                    list(new.present),
                    server_update(new, lang),
                    *show(new, lang),
                ]

            return handler

        def on_free_text(text: str, present: list[str], denied: tuple[str, ...], lang: str):
            text = text if isinstance(text, str) else ""
            present, lang = callbacks.chosen_symptoms(present), callbacks.chosen_language(lang)
            return callbacks.add_free_text(
                client, text, present, callbacks.denied_symptoms(denied), lang
            )

        def on_clear(lang: str):
            lang = callbacks.chosen_language(lang)
            outcome = Outcome()
            return [outcome, (), [], "", "", *show(outcome, lang)]

        def on_language(lang: str, outcome: Outcome):
            lang = callbacks.chosen_language(lang)
            tr = translations(lang)
            return [
                _title_md(lang),
                tr.text("disclaimer"),
                gr.Radio(label=tr.text("language_label")),
                gr.Dropdown(
                    choices=callbacks.picker_choices(lang),
                    label=tr.text("picker_label"),
                    info=tr.text("picker_info"),
                ),
                gr.Textbox(
                    label=tr.text("describe_label"), placeholder=tr.text("describe_placeholder")
                ),
                gr.Button(tr.text("add_text_button")),
                gr.Button(tr.text("submit")),
                gr.Button(tr.text("clear")),
                gr.Button(tr.text("yes")),
                gr.Button(tr.text("no")),
                "",
                callbacks.server_status(client, lang),
                *show(outcome, lang),
            ]

        submit.click(
            on_submit,
            [picker, denied_state, language],
            [outcome_state, denied_state, server, *view_outputs],
            api_name="diagnose",
            preprocess=False,
        )
        for button, has_it, api_name in ((yes, True, "answer_yes"), (no, False, "answer_no")):
            button.click(
                on_answer(has_it),
                [picker, outcome_state, denied_state, language],
                [outcome_state, denied_state, picker, server, *view_outputs],
                api_name=api_name,
                preprocess=False,
            )
        gr.on(
            [add_text.click, free_text.submit],
            on_free_text,
            [free_text, picker, denied_state, language],
            [picker, denied_state, understood, free_text],
            api_name="free_text",
            preprocess=False,
        )
        clear.click(
            on_clear,
            [language],
            [outcome_state, denied_state, picker, understood, free_text, *view_outputs],
            api_name="clear",
            preprocess=False,
        )
        language.change(
            on_language,
            [language, outcome_state],
            [
                title,
                disclaimer,
                language,
                picker,
                free_text,
                add_text,
                submit,
                clear,
                yes,
                no,
                understood,
                server,
                *view_outputs,
            ],
            api_name="language",
            preprocess=False,
        )
        timer = gr.Timer(status_every)
        gr.on(
            [demo.load, timer.tick],
            lambda lang: callbacks.server_status(client, callbacks.chosen_language(lang)),
            [language],
            [server],
            show_progress="hidden",
            api_name="server_status",
            preprocess=False,
        )
    return demo


def _title_md(language: str) -> str:
    tr = translations(language)
    return f"# {tr.text('title')}\n\n{tr.text('intro')}"
