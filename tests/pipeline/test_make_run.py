"""`make run`'s command end to end: train, register, serve the champion, the UI and the
monitoring, then Ctrl+C stops everything (test_make_run_stopped.py: the hard ways)."""

import signal
import time

import httpx
import pytest
from makerun import SERVING, MakeRun, free_ports, infer, nothing_left, prometheus

from symptom_dx.local.lifecycle import RECORD_FILE

pytestmark = pytest.mark.integration


def test_run_trains_serves_monitors_and_stops_cleanly(data_dir, tmp_path):
    ports = free_ports()
    with MakeRun(data_dir, tmp_path / "state", ports) as run:
        try:
            run.wait_for(SERVING)
            output = run.output
            assert "gate: no champion yet" in output
            model = run.url("MODEL_HTTP_PORT")
            assert f"model server  {model}/v2/models/disease-classifier" in output
            assert f"web UI        {run.url('UI_PORT')}" in output
            prom = run.url("PROMETHEUS_PORT")
            assert f"Prometheus    {prom}" in output
            assert f"Alertmanager  {run.url('ALERTMANAGER_PORT')}" in output

            # a request before the model server's first scrape is not counted: wait for it
            up = 'up{job=~".*disease-classifier.*"}'
            deadline = time.monotonic() + 30
            while not prometheus(prom, "query", query=f"{up} == 1")["result"]:
                assert time.monotonic() < deadline, "Prometheus never scraped the model server"
                time.sleep(0.5)
            # ten requests, as a user would send them
            for _ in range(10):
                answer = infer(model, "itching, skin rash, nodal skin eruptions")
                assert answer.json()["outputs"][0]["data"][0] == "Fungal infection"
            assert httpx.get(run.url("UI_PORT"), timeout=5).status_code == 200

            # every target up, every rule evaluated without error, the patients counted
            counted = "model_name:disease_classifier_patients:increase1h"
            deadline = time.monotonic() + 30
            while True:
                targets = prometheus(prom, "targets")["activeTargets"]
                groups = prometheus(prom, "rules")["groups"]
                patients = prometheus(prom, "query", query=counted)["result"]
                if (
                    all(t["health"] == "up" for t in targets)
                    and all(
                        r.get("lastEvaluation", "0001")[:4] != "0001"
                        for g in groups
                        for r in g["rules"]
                    )
                    and patients
                    and float(patients[0]["value"][1]) >= 10
                ):
                    break
                assert time.monotonic() < deadline, (targets, groups, patients)
                time.sleep(0.5)
            assert {t["labels"]["job"] for t in targets} == {
                "kserve-inference/disease-classifier",
                "kserve-inference/symptom-dx-ui",
                "mlflow/mlflow",
            }
            rules = [r for g in groups for r in g["rules"]]
            assert all(r["health"] == "ok" for r in rules), rules
            assert {g["name"] for g in groups} >= {"symptom-dx.serving", "symptom-dx.drift"}
            drift = "model_name:disease_classifier_input_drift:tvd1h"
            assert prometheus(prom, "query", query=drift)["result"]
            am = httpx.get(f"{run.url('ALERTMANAGER_PORT')}/api/v2/status", timeout=5)
            assert am.status_code == 200
            run_id = run.record()["run_id"]
        finally:
            run.proc.send_signal(signal.SIGINT)
            code = run.proc.wait(timeout=60)
        assert code == 0, run.output[-2000:]
        assert "stopping" in run.output
    nothing_left(run_id, ports)
    state = tmp_path / "state"
    assert (state / "prometheus" / "data").is_dir()  # its data lives in .state
    assert not (state / RECORD_FILE).exists()
    assert not (state / "kfp-workspace").exists()  # KFP's scratch folder is gone
