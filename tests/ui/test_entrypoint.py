"""``python -m ui`` (the Dockerfile's entrypoint) as a real process: settings, page, metrics."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from symptom_dx.local.services import free_port
from ui.launcher import start_ui

pytestmark = pytest.mark.integration


def test_without_a_data_folder_it_says_what_to_set(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ui"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "SYMPTOM_DX_UI_DATA_DIR" in done.stderr


def test_page_api_and_metrics(model_server, data_dir, tmp_path):
    from gradio_client import Client

    ui = start_ui(model_server.url, free_port(), data_dir, tmp_path / "logs")
    try:
        page = httpx.get(ui.url, timeout=5)
        assert page.status_code == 200
        client = Client(ui.url, verbose=False, download_files=False)
        server_line, status, *_ = client.predict(
            ["itching", "skin_rash", "nodal_skin_eruptions"], "en", api_name="/diagnose"
        )
        assert server_line == "Model server: ready."
        assert status == ""
        metrics = httpx.get(f"{ui.url}/metrics", timeout=5).text
        assert 'symptom_dx_ui_requests_total{action="diagnose",outcome="ok"} 1.0' in metrics
        assert (
            'symptom_dx_ui_backend_request_duration_seconds_count{call="infer",outcome="ok"} 1.0'
            in metrics
        )
        log = ui.log_path.read_text()
        assert "nodal_skin_eruptions" not in log  # symptom payloads are never logged
    finally:
        ui.stop()
