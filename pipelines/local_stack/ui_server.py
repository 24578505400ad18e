"""Start the UI as a subprocess (for ``make run`` and tests), ready when its page answers."""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.local_stack.services import LOOPBACK, Service, poll, require_free, start


def start_ui(
    model_url: str,
    port: int,
    data_dir: str | Path,
    log_dir: Path,
    env: dict | None = None,
    timeout: float = 60.0,
) -> Service:
    """``python -m ui`` on 127.0.0.1:``port`` talking to ``model_url``; returns when the page
    and its ``/metrics`` answer. The Service's ``url`` is the page's address."""
    require_free(port, "UI", "UI_PORT")
    child_env = {
        "SYMPTOM_DX_UI_MODEL_URL": model_url,
        "SYMPTOM_DX_UI_HOST": LOOPBACK,
        "SYMPTOM_DX_UI_PORT": str(port),
        "SYMPTOM_DX_UI_DATA_DIR": str(data_dir),
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(env or {}),
    }

    def answers(svc: Service) -> bool:
        page = poll(f"{svc.url}/", timeout=2.0)
        metrics = poll(f"{svc.url}/metrics", timeout=2.0)
        return page.status_code == 200 and metrics.status_code == 200

    argv = [sys.executable, "-m", "ui"]
    return start(
        "ui", argv, Path(log_dir), f"http://{LOOPBACK}:{port}", answers, timeout, child_env
    )
