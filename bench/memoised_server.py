"""``python -m serving`` with one stage made free, for ``bench/serving_ceiling.py``: the
classifier's ranking (``rank``) or the free-text parser (``parse``) answered from a memo keyed
by its input, so that, after the first of the bench's few distinct requests, the stage costs a
dictionary look-up. What the server then answers a second is the most any faster ranking or
parser could give on this stack: an upper bound, not a way to serve (it keeps what people
send, which the real server never does).

    python bench/memoised_server.py rank|parse SERVING_ARGS...
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

from symptom_dx.model import RankedColumns, SymptomClassifier

STAGES = ("rank", "parse")


def memoise_rank() -> None:
    rank_columns = SymptomClassifier.rank_columns
    memo: dict = {}

    def memoised(
        self: SymptomClassifier,
        present: Sequence[Sequence[int]],
        top_k: int = 5,
        absent: Sequence[Sequence[int]] | None = None,
        separator: str = ",",
    ) -> RankedColumns:
        key = (tuple(map(tuple, present)), top_k, tuple(map(tuple, absent or ())), separator)
        ranked = memo.get(key)
        if ranked is None:
            ranked = memo[key] = rank_columns(self, present, top_k, absent, separator)
        return ranked

    SymptomClassifier.rank_columns = memoised


def memoise_parse() -> None:
    import serving.symptom_inputs

    # the server reads text through the name symptom_inputs imported
    serving.symptom_inputs.parse_symptoms = functools.lru_cache(maxsize=None)(
        serving.symptom_inputs.parse_symptoms
    )


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in STAGES:
        sys.exit(f"usage: memoised_server.py {'|'.join(STAGES)} SERVING_ARGS...")
    stage = sys.argv[1]
    from serving.__main__ import main

    memoise_rank() if stage == "rank" else memoise_parse()
    sys.exit(main(sys.argv[2:]))
