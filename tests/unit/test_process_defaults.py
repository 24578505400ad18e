"""What every process of ours sets up for itself when it starts, checked in fresh
interpreters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from testkit import REPO

# The user's own switches; what tells MLflow that it runs under pytest stays, so that even if
# the check below failed, no MLflow thread would call out from this test.
USER_SWITCHES = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


def _python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in USER_SWITCHES}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_mlflow_reports_no_usage_from_our_processes(monkeypatch):
    """Importing symptom_dx first (every component, server and command does) turns MLflow's
    usage reports off, so no thread of ours calls out to MLflow's maintainers; a user's own
    setting wins."""
    from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY

    read = "import os, symptom_dx; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    ours = _python(read)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", ours)
    assert MLFLOW_DISABLE_TELEMETRY.get() is True  # what MLflow makes of our value
    assert (
        _python(f"import os; os.environ['MLFLOW_DISABLE_TELEMETRY'] = 'false'; {read}") == "false"
    )


EXIT_PROBE = """
import atexit, gc, os
from symptom_dx.process_exit import skip_final_collection
if {skip}:
    skip_final_collection()
    skip_final_collection()  # entry points may call it more than once
atexit.register(lambda: os.write(1, b"handler, frozen: %d\\n" % gc.get_freeze_count()))

class InACycle:
    def __init__(self):
        self.me = self

    def __del__(self, write=os.write):  # globals may be gone by then
        write(1, b"finalized\\n")

left = InACycle()
"""


@pytest.mark.parametrize("skip", [True, False])
def test_exit_skips_the_final_collection(skip):
    """An atexit handler registered later (as MLflow's are) runs before the freeze; then the
    interpreter's last collection walks nothing, so an object left in a reference cycle is
    not finalized, as it is by default."""
    out = _python(EXIT_PROBE.format(skip=skip)).splitlines()
    assert out == ["handler, frozen: 0"] + ([] if skip else ["finalized"])
