"""No process outlives `make run`, however it ends (Ctrl+C, SIGTERM, SIGHUP or SIGKILL).

Every process a run starts (the servers, the pipeline's steps, their own children) inherits
the run's id in its environment (``SYMPTOM_DX_RUN_ID``); that is how they are found, whatever
their process group or parent is by then. Three layers use it:

- **signals**: SIGTERM and SIGHUP stop a run the way Ctrl+C does, from its first line (also
  while the pipeline runs), and the run stops everything on its way out;
- **a reaper**: a small process in its own session that holds a pipe from the run. If the
  run dies without saying goodbye (SIGKILL, a crash), the pipe closes and the reaper stops
  every process carrying the run's id;
- **the run's record** (``<state>/run.json``: pid, id, reaper): if even the reaper was killed,
  the next run finds what the earlier one left, stops it and says so, instead of failing on
  ports in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from symptom_dx.deadlines import poll_until

RUN_ID_ENV = "SYMPTOM_DX_RUN_ID"
RECORD_FILE = "run.json"
GOODBYE = b"done\n"  # the run's last words to its reaper: everything is already stopped
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Proc:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid})"


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours to read
        return []


def command_of(pid: int) -> str:
    """A short, one-line name of a process: its program and first arguments."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv[:3]]
    if words:
        words[0] = Path(words[0]).name
    return " ".join(" ".join(words).split())[:60]


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state first), or [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def started_at(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot): with the pid, names a process for good."""
    fields = _stat(pid)
    return int(fields[19]) if len(fields) > 19 else -1


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, 0 if it is gone."""
    fields = _stat(pid)
    if len(fields) <= 12:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_of(run_id: str, exclude: Iterable[int] = ()) -> list[Proc]:
    """Every live process whose environment carries ``run_id``."""
    marker = f"{RUN_ID_ENV}={run_id}".encode()
    skip = {os.getpid(), *exclude}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        if marker in _environ(pid) and alive(pid):
            found.append(Proc(pid, command_of(pid)))
    return found


def stop_processes(procs: list[Proc], timeout: float = 10.0) -> None:
    """SIGTERM each, then SIGKILL what is still there after ``timeout`` seconds."""

    def all_gone(procs: list[Proc]) -> Callable[[], bool]:
        return lambda: not any(alive(p.pid) for p in procs)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p.pid, sig)
        if poll_until(all_gone(procs), wait):
            return
        procs = [p for p in procs if alive(p.pid)]


def stop_run(run_id: str, timeout: float = 10.0, exclude: Iterable[int] = ()) -> list[Proc]:
    """Stop every process of a run (until none is left); return what was stopped."""
    stopped: list[Proc] = []
    for _ in range(5):  # a dying parent may have started one more child meanwhile
        procs = processes_of(run_id, exclude)
        if not procs:
            break
        stop_processes(procs, timeout)
        stopped += procs
    return stopped


class Run:
    """The context of one `make run`: its id, its reaper, its record, its signal handlers.

    ``with Run(state_dir, say) as run:`` first stops what an earlier run left (saying so);
    on the way out it stops any process of this run still alive, then retires the reaper.
    """

    def __init__(self, state_dir: Path, say: Callable[[str], None]):
        self.state_dir = state_dir
        self.record = state_dir / RECORD_FILE
        self.say = say
        self.run_id = ""
        self._reaper: subprocess.Popen | None = None
        self._stopping = False
        self._previous_handlers: dict[int, object] = {}

    # -- the way in --------------------------------------------------------------------------
    def __enter__(self) -> Run:
        self._install_signal_handlers()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.take_over()
            self.run_id = secrets.token_hex(8)
            os.environ[RUN_ID_ENV] = self.run_id
            self._reaper = self._start_reaper()
            tmp = self.record.with_suffix(".tmp")
            me = os.getpid()
            record = {"pid": me, "started": started_at(me), "run_id": self.run_id}
            tmp.write_text(json.dumps({**record, "reaper": self._reaper.pid}))
            tmp.replace(self.record)
        except BaseException:
            self._restore_signal_handlers()
            raise
        return self

    def take_over(self) -> None:
        """Stop the processes an earlier run left behind, or refuse if that run is alive."""
        try:
            earlier = json.loads(self.record.read_text())
            pid, run_id = int(earlier["pid"]), str(earlier["run_id"])
            started = int(earlier.get("started", -1))
        except (OSError, ValueError, KeyError, TypeError):
            return
        # (the run's own environment does not show its id: it was set after it started)
        if alive(pid) and started_at(pid) == started:
            raise RunInProgress(
                f"another `make run` (pid {pid}) is using {self.state_dir}: stop it first"
                " (Ctrl+C in its terminal, or kill it)"
            )
        stopped = stop_run(run_id)
        if stopped:
            listed = ", ".join(str(p) for p in stopped[:8])
            more = f" and {len(stopped) - 8} more" if len(stopped) > 8 else ""
            self.say(f"stopped {len(stopped)} processes an earlier run left: {listed}{more}")
        self.record.unlink(missing_ok=True)

    def _start_reaper(self) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != RUN_ID_ENV}
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "reaper.log", "ab") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipelines.local_stack.reaper",
                    self.run_id,
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # out of reach of the terminal's Ctrl+C and of kill -PGID
            )

    # -- signals -----------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return  # already on the way out: let the services stop in order
        self._stopping = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # -- the way out -------------------------------------------------------------------------
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = True  # from here on a signal cannot cut the cleanup short
        try:
            if not self.run_id:
                return
            reaper_pid = self._reaper.pid if self._reaper else None
            left = stop_run(self.run_id, exclude=[p for p in (reaper_pid,) if p])
            if left:
                self.say(f"stopped {len(left)} leftover processes: " + ", ".join(map(str, left)))
            if self._reaper is not None:
                with contextlib.suppress(OSError):
                    self._reaper.stdin.write(GOODBYE)
                    self._reaper.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._reaper.wait(10)
            self.record.unlink(missing_ok=True)
            os.environ.pop(RUN_ID_ENV, None)
        finally:
            self._restore_signal_handlers()

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()


class RunInProgress(RuntimeError):
    """Another live run uses the same state folder."""
