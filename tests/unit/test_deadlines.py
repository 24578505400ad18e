"""The one deadline loop and the one error line."""

import time

from symptom_dx.deadlines import poll_until
from symptom_dx.errors import first_line


def test_poll_until_returns_the_first_yes():
    answers = iter([0, None, "", "ready", "later"])
    assert poll_until(lambda: next(answers), timeout=5, interval=0.001) == "ready"


def test_poll_until_asks_once_more_at_the_deadline_and_returns_the_last_no():
    asked: list[float] = []
    start = time.monotonic()
    assert poll_until(lambda: asked.append(time.monotonic()) or [], timeout=0.2, interval=0.5) == []
    assert len(asked) == 2  # at once, and at the deadline (not after a whole interval)
    assert asked[1] - start >= 0.2


def test_first_line_is_one_line_or_the_type():
    assert first_line(RuntimeError("  refused\n  Traceback ...\n")) == "refused"
    assert first_line(TimeoutError()) == "TimeoutError"
