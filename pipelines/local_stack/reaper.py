"""``python -m pipelines.local_stack.reaper RUN_ID PARENT_PID``: stops a run's processes when
the run dies without saying goodbye (see ``pipelines.local_stack.lifecycle``).

It blocks reading its stdin, a pipe only the run holds. The run writes ``done`` before it
exits normally; end of file without it means the run was killed, and every process carrying
the run's id is stopped.
"""

from __future__ import annotations

import signal
import sys
import time

from pipelines.local_stack.lifecycle import GOODBYE, stop_run


def main(argv: list[str]) -> int:
    run_id, parent = argv[1], argv[2]
    for sig in (signal.SIGINT, signal.SIGHUP):  # only the pipe decides
        signal.signal(sig, signal.SIG_IGN)
    last_words = sys.stdin.buffer.read()
    if last_words == GOODBYE:
        return 0
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    stopped = stop_run(run_id)
    listed = ", ".join(map(str, stopped)) or "nothing was left"
    print(f"{stamp} run {run_id} (pid {parent}) ended without stopping; stopped: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
