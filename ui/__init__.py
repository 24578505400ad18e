"""The Gradio front end: a symptom form over the model server's v2 REST endpoint.

``ui.client`` talks to the model server, ``ui.callbacks`` turns its answers into what the page
shows (plain functions, testable without a browser), ``ui.app`` wires them to Gradio components,
``python -m ui`` serves the page. Symptom and disease lists, translations and the description,
precaution and severity tables all come from the ``symptom_dx`` package.
"""
