"""``python -m ui``: serve the symptom form on SYMPTOM_DX_UI_HOST:SYMPTOM_DX_UI_PORT.

Settings come from ``SYMPTOM_DX_UI_*`` variables (see ``ui.settings``). Prometheus metrics are
served at ``/metrics`` on the same port.
"""

from __future__ import annotations

import logging
import os
import sys

# No telemetry and no update checks: the page talks to nothing but the model server.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    import pydantic

    from symptom_dx.errors import SymptomDxError
    from symptom_dx.knowledge import load_knowledge
    from symptom_dx.process_exit import skip_final_collection
    from ui.settings import UISettings

    skip_final_collection()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per backend call otherwise
    try:
        settings = UISettings()
    except pydantic.ValidationError as e:
        print(f"ui: invalid settings: {e}", file=sys.stderr)
        return 2
    if settings.data_dir is None:
        print(
            "ui: set SYMPTOM_DX_UI_DATA_DIR (or DATA_DIR) to the folder with "
            "symptom_Description.csv, symptom_precaution.csv and Symptom_severity.csv",
            file=sys.stderr,
        )
        return 2
    try:
        knowledge = load_knowledge(settings.data_dir)
    except SymptomDxError as e:
        print(f"ui: {e}", file=sys.stderr)
        return 2
    # Gradio (seconds to import) only once the settings hold: a bad one is said at once.
    from ui.app import CSS, build_app
    from ui.client import ModelClient
    from ui.metrics import metrics_route

    client = ModelClient(settings.model_url, settings.model_name, settings.timeout)
    demo = build_app(client, knowledge, top_k=settings.top_k)
    print(f"ui: model server {settings.model_url} (model {settings.model_name})", flush=True)
    demo.queue(default_concurrency_limit=8).launch(
        server_name=settings.host,
        server_port=settings.port,
        app_kwargs={"routes": [metrics_route()]},
        css=CSS,
        footer_links=[],
        enable_monitoring=False,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        prevent_thread_lock=True,
    )
    demo.block_thread()
    return 0


if __name__ == "__main__":  # pragma: no cover - the entry point itself
    sys.exit(main())
