"""The one deadline loop: ask again until the answer is yes or the time is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(check: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """Call ``check`` every ``interval`` seconds until it returns a truthy value, and return that
    value; at the deadline, return its last (falsy) answer. ``check`` is called at least once,
    and once more at the deadline itself, so a slow start never loses the last chance."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        left = deadline - time.monotonic()
        if answer or left <= 0:
            return answer
        time.sleep(min(interval, left))
