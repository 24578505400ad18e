"""`make run` stopped the hard ways (SIGTERM mid-pipeline, SIGKILL of the run and of its
reaper), and the next run on the same state: nothing stays."""

import os
import re
import signal
import time
from pathlib import Path

import pytest
from makerun import PIPELINE, SERVING, MakeRun, free_ports, infer, nothing_left

from symptom_dx.local.lifecycle import alive, processes_of
from symptom_dx.local.services import port_is_free

pytestmark = pytest.mark.integration


def test_sigterm_during_the_pipeline_stops_everything(data_dir, tmp_path):
    ports = free_ports()
    with MakeRun(data_dir, tmp_path / "state", ports) as run:
        run.wait_for(PIPELINE, timeout=120)
        run_id = run.record()["run_id"]
        servers = {p.command.split()[0] for p in processes_of(run_id)}
        assert {"weed", "python"} <= servers, servers  # S3, MLflow, the pipeline
        run.proc.send_signal(signal.SIGTERM)
        code = run.proc.wait(timeout=60)
        assert code == 130, run.output[-2000:]
        assert "interrupted" in run.output
    nothing_left(run_id, ports)


def test_sigkill_leaves_nothing_and_the_next_run_takes_over(data_dir, tmp_path):
    ports = free_ports()
    """SIGKILL of the run and of its reaper mid-pipeline: the next run on the same state
    finds the leftovers, stops them, says so, and works. SIGKILL of that run while it
    serves: its reaper stops everything. Only one pipeline run's outputs stay
    (PIPELINE_RUNS_KEPT=1), and KFP leaves no temporary folder."""
    state = tmp_path / "state"
    kfp_temp_before = set(Path("/tmp").glob("kfp-workspace-*"))
    with MakeRun(data_dir, state, ports, PIPELINE_RUNS_KEPT="1") as first:
        first.wait_for(PIPELINE, timeout=120)
        record = first.record()
        os.kill(record["reaper"], signal.SIGKILL)
        first.proc.kill()
        first.proc.wait()
        deadline = time.monotonic() + 10
        while alive(record["reaper"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    left = processes_of(record["run_id"])
    assert left, "nothing left to take over"
    assert not port_is_free(ports["S3_PORT"])

    with MakeRun(data_dir, state, ports, PIPELINE_RUNS_KEPT="1") as second:
        second.wait_for(SERVING)
        # the killed pipeline's steps may still have been starting when `left` was taken
        taken_over = re.search(r"stopped (\d+) processes an earlier run left", second.output)
        assert taken_over and int(taken_over[1]) >= len(left), second.output[-2000:]
        assert "is in use" not in second.output
        assert processes_of(record["run_id"]) == []
        assert infer(second.url("MODEL_HTTP_PORT"), "cough, high fever").status_code == 200
        run_id = second.record()["run_id"]
        assert len(processes_of(run_id)) >= 6  # S3, MLflow (2), model server, UI, Prometheus...
        second.proc.kill()
        second.proc.wait()
    nothing_left(run_id, ports)
    # the reaper says what it did after it stopped everything: give it a moment to write
    reaper_log = state / "logs" / "reaper.log"
    deadline = time.monotonic() + 10
    while "ended without stopping" not in (reaper_log.read_text() if reaper_log.exists() else ""):
        assert time.monotonic() < deadline, "the reaper did not report"
        time.sleep(0.2)
    runs = [p for p in (state / "pipeline-root").iterdir() if p.is_dir() and p.name[0] != "."]
    assert len(runs) == 1, runs
    assert not (state / "kfp-workspace").exists()
    assert set(Path("/tmp").glob("kfp-workspace-*")) <= kfp_temp_before
