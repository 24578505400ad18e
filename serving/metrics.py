"""Our Prometheus counters, served on ``/metrics`` beside KServe's latency histograms.

Label values are bounded: diseases (the model's classes), canonical symptom ids (the
vocabulary) and the rejection reasons of ``serving.protocol.REASONS``; never free text.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from symptom_dx.model import Differential
from symptom_dx.vocabulary import vocabulary

PREDICTIONS = Counter(
    "disease_classifier_predictions",
    "Patients ranked, by the disease ranked first",
    ["model_name", "disease"],
)
SYMPTOMS_SEEN = Counter(
    "disease_classifier_symptoms_seen",
    "Symptoms reported present, by canonical symptom id (input drift)",
    ["model_name", "symptom"],
)
REJECTED = Counter(
    "disease_classifier_rejected_requests",
    "Requests answered 400 / INVALID_ARGUMENT, by reason",
    ["model_name", "reason"],
)
PATIENTS = Counter(
    "disease_classifier_patients",
    "Patients ranked, by input form (names or vector)",
    ["model_name", "form"],
)


class ModelMetrics:
    """Pre-bound label children of the counters for one served model (cheap per request)."""

    def __init__(self, model_name: str, classes: Sequence[str]):
        self.model_name = model_name
        self._top = {c: PREDICTIONS.labels(model_name, c) for c in classes}
        ids = vocabulary().ids
        self._seen = [SYMPTOMS_SEEN.labels(model_name, s) for s in ids]
        self._forms = {f: PATIENTS.labels(model_name, f) for f in ("names", "vector")}

    def ranked(
        self, present: Sequence[Sequence[int]], results: Sequence[Differential], form: str
    ) -> None:
        for r in results:
            self._top[r.diseases[0]].inc()
        for positions in present:
            for j in positions:
                self._seen[j].inc()
        self._forms[form].inc(len(results))


def rejected(model_name: str, reason: str) -> None:
    REJECTED.labels(model_name, reason).inc()
