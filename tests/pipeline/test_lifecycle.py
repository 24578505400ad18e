"""`make run`'s process lifecycle in isolation: finding a run's processes by their run id,
stopping them, the reaper, taking over from a killed run; keeping its state bounded.

The end-to-end versions (a real `make run` killed at different moments) are in
test_make_run.py.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.local_stack.housekeeping import keep_newest
from pipelines.local_stack.lifecycle import (
    RECORD_FILE,
    RUN_ID_ENV,
    Run,
    RunInProgress,
    alive,
    cpu_seconds,
    processes_of,
    started_at,
    stop_run,
)

# a server with a worker process
SERVER = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    time.sleep(300)
    """
)
# a process that ignores SIGTERM and has a child: the hard case for stopping
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    time.sleep(300)
    """
)


def spawn_marked(run_id: str, code: str = STUBBORN) -> subprocess.Popen:
    env = {**os.environ, RUN_ID_ENV: run_id}
    return subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_runs_processes_are_found_and_stopped_even_stubborn_ones():
    proc = spawn_marked("test-run-1")
    try:
        wait_for(lambda: len(processes_of("test-run-1")) == 2, 10, "parent and child")
        assert processes_of("another-run") == []
        stopped = stop_run("test-run-1", timeout=1.0)
        assert {p.pid for p in stopped} >= {proc.pid}
        proc.wait(5)  # ours to reap
        assert processes_of("test-run-1") == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_the_next_run_stops_what_a_killed_run_left_and_says_so(tmp_path):
    leftover = spawn_marked("killed-run", SERVER)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / RECORD_FILE).write_text(json.dumps({"pid": dead.pid, "run_id": "killed-run"}))
    said = []
    try:
        wait_for(lambda: len(processes_of("killed-run")) == 2, 10, "the leftovers")
        with Run(tmp_path, said.append) as run:
            assert run.run_id and os.environ[RUN_ID_ENV] == run.run_id
            record = json.loads((tmp_path / RECORD_FILE).read_text())
            assert record["pid"] == os.getpid() and record["run_id"] == run.run_id
        leftover.wait(15)
        assert processes_of("killed-run") == []
        assert said and said[0].startswith("stopped 2 processes an earlier run left")
        assert not (tmp_path / RECORD_FILE).exists()
        assert RUN_ID_ENV not in os.environ
    finally:
        if leftover.poll() is None:
            os.killpg(leftover.pid, signal.SIGKILL)


def test_a_live_run_on_the_same_state_is_not_touched(tmp_path):
    other = spawn_marked("live-run", "import time; time.sleep(300)")
    try:
        wait_for(lambda: processes_of("live-run"), 10, "the other run")
        record = {"pid": other.pid, "started": started_at(other.pid), "run_id": "live-run"}
        (tmp_path / RECORD_FILE).write_text(json.dumps(record))
        with pytest.raises(RunInProgress, match=f"pid {other.pid}"), Run(tmp_path, print):
            pass
        assert alive(other.pid)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers put back
    finally:
        other.kill()
        other.wait()


def test_the_reaper_stops_everything_when_the_run_is_killed(tmp_path):
    """SIGKILL leaves no chance to clean up: the reaper, watching a pipe, does it."""
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import subprocess, sys, time
                from pathlib import Path
                from pipelines.local_stack.lifecycle import Run
                with Run(Path({str(tmp_path)!r}), print):
                    subprocess.Popen([sys.executable, "-c", {SERVER!r}], start_new_session=True)
                    print("serving", flush=True)
                    time.sleep(300)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout.readline().strip() == "serving"
        run_id = json.loads((tmp_path / RECORD_FILE).read_text())["run_id"]
        # the run's own /proc environ predates its id; what it starts carries it
        wait_for(lambda: len(processes_of(run_id)) == 2, 10, "the server and its worker")
        run.kill()
        run.wait()
        wait_for(lambda: not processes_of(run_id), 20, "the reaper to stop the servers")
        log = tmp_path / "logs" / "reaper.log"
        wait_for(lambda: "ended without stopping" in log.read_text(), 10, "the reaper's note")
    finally:
        if run.poll() is None:
            run.kill()


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path):
    said = []
    with pytest.raises(KeyboardInterrupt), Run(tmp_path, said.append):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_only_the_newest_pipeline_runs_are_kept(tmp_path):
    root = tmp_path / "pipeline-root"
    for i in range(5):
        run = root / f"disease-training-2026-01-0{i}"
        (run / "train").mkdir(parents=True)
        os.utime(run, (1_000_000 + i, 1_000_000 + i))
    (root / ".kfp_cache").mkdir()
    (root / "last-error").write_text("")
    removed = keep_newest(root, 2)
    assert sorted(p.name for p in removed) == [f"disease-training-2026-01-0{i}" for i in range(3)]
    assert sorted(p.name for p in root.iterdir()) == [
        ".kfp_cache",
        "disease-training-2026-01-03",
        "disease-training-2026-01-04",
        "last-error",
    ]
    assert keep_newest(tmp_path / "missing", 2) == []


def test_no_run_leaves_its_id_in_this_process():
    assert RUN_ID_ENV not in os.environ
    assert Path("/proc/self/environ").exists()


def test_a_port_in_use_names_who_has_it():
    from pipelines.local_stack.services import ServiceError, free_port, require_free

    port = free_port()
    code = (
        f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen();"
        " print('listening', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "listening"
        with pytest.raises(ServiceError) as e:
            require_free(port, "S3", "S3_PORT")
        message = str(e.value)
        assert message.startswith(f"S3 port {port} on 127.0.0.1 is in use by python -c import")
        assert message.endswith(f"(pid {holder.pid}); stop it or set S3_PORT to a free port")
    finally:
        holder.kill()
        holder.wait()


def test_service_logs_rotate_instead_of_growing(tmp_path, monkeypatch):
    from pipelines.local_stack import services

    monkeypatch.setattr(services, "LOG_ROTATE_BYTES", 1000)
    (tmp_path / "s3.log").write_text("old run\n" * 200)
    services.spawn("s3", ["true"], tmp_path).proc.wait(10)
    assert (tmp_path / "s3.log.1").read_text().startswith("old run")
    assert (tmp_path / "s3.log").stat().st_size < 1000


def test_cpu_seconds_counts_a_process_work_and_nothing_for_one_gone():
    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\ntime.sleep(30)",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while cpu_seconds(busy.pid) < 0.3:
            assert time.monotonic() < deadline, cpu_seconds(busy.pid)
            time.sleep(0.05)
    finally:
        busy.kill()
        busy.wait()
    assert cpu_seconds(busy.pid) == 0.0
