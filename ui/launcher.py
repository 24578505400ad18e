"""Start the UI as a subprocess (for ``make run`` and tests), ready when its page answers."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from symptom_dx.local.services import (
    LOOPBACK,
    Service,
    ServiceError,
    port_is_free,
    spawn,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]


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
    if not port_is_free(port):
        raise ServiceError(
            f"UI port {port} on {LOOPBACK} is in use; set SYMPTOM_DX_UI_PORT to a free port"
        )
    child_env = {
        "SYMPTOM_DX_UI_MODEL_URL": model_url,
        "SYMPTOM_DX_UI_HOST": LOOPBACK,
        "SYMPTOM_DX_UI_PORT": str(port),
        "SYMPTOM_DX_UI_DATA_DIR": str(data_dir),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": _pythonpath(),
        **(env or {}),
    }
    svc = spawn("ui", [sys.executable, "-m", "ui"], Path(log_dir), child_env)
    svc.url = f"http://{LOOPBACK}:{port}"

    def answers() -> bool:
        page = httpx.get(f"{svc.url}/", timeout=2.0)
        metrics = httpx.get(f"{svc.url}/metrics", timeout=2.0)
        return page.status_code == 200 and metrics.status_code == 200

    try:
        wait_until(answers, timeout, f"UI on port {port}", svc.proc)
    except ServiceError as e:
        svc.stop()
        raise ServiceError(f"{e}\n{svc.log_tail()}") from None
    return svc


def _pythonpath() -> str:
    """The repository root first (``ui`` is a top-level package there), then what was set."""
    import os

    parts = [str(REPO), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return os.pathsep.join(parts)
