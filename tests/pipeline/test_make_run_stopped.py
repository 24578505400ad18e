"""`make run` stopped the hard ways mid-pipeline: SIGTERM, and SIGKILL of the run, after which
its reaper stops everything (test_make_run.py: SIGKILL of the reaper too, and the next run)."""

import signal
import time

import pytest
from makerun import PIPELINE, MakeRun, free_ports, nothing_left

from pipelines.local_stack.lifecycle import processes_of

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


def test_sigkill_of_the_run_its_reaper_stops_everything(data_dir, tmp_path):
    ports = free_ports()
    state = tmp_path / "state"
    with MakeRun(data_dir, state, ports) as run:
        run.wait_for(PIPELINE, timeout=120)
        run_id = run.record()["run_id"]
        assert len(processes_of(run_id)) >= 3  # S3, MLflow, the pipeline
        run.proc.kill()
        run.proc.wait()
    nothing_left(run_id, ports)
    # the reaper says what it did after it stopped everything: give it a moment to write
    reaper_log = state / "logs" / "reaper.log"
    deadline = time.monotonic() + 10
    while "ended without stopping" not in (reaper_log.read_text() if reaper_log.exists() else ""):
        assert time.monotonic() < deadline, "the reaper did not report"
        time.sleep(0.2)
