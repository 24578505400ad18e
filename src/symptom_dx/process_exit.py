"""A process that ends, ends at once.

At exit, Python runs one last garbage collection over every object still alive: in a process
that imported MLflow, scikit-learn, pandas or KServe that walk takes about a second (a model
server: ~0.9 s of its ~1.2 s from SIGTERM to gone), only to free memory the operating system
takes back anyway. Freezing what is left (``gc.freeze``) once the ``atexit`` handlers ran
skips that walk.

The price: objects only reachable through reference cycles at exit are not finalized (their
``__del__`` does not run). Whatever our processes must write at exit is written in ``with``
blocks and ``atexit`` handlers (logging's, MLflow's, ``weakref.finalize``'s), which all still
run first; ``tests/unit/test_process_defaults.py`` shows both sides.
"""

from __future__ import annotations

import atexit
import gc
from functools import cache


@cache  # one registration per process, however many entry points call it
def skip_final_collection() -> None:
    """Call early in a process's entry point: its exit then skips the last collection."""
    # atexit runs its handlers last-registered-first: registered before the process's own
    # work, this runs after the handlers of what that work sets up (MLflow's run, tempfiles).
    atexit.register(gc.freeze)
