"""Our Prometheus metrics, served on ``/metrics`` beside KServe's latency histograms.

Label values are bounded by what the server serves, never by what clients send: the served
model's name, its classes, the vocabulary's ids, the input forms and the rejection reasons of
``serving.protocol.REASONS``. Every child is created when the model loads.

The two training gauges describe what the model saw in training (``metadata.json``'s
``training_reference``, see ``symptom_dx.model.TrainingReference``): drift rules compare live
traffic with them. A model saved before the reference was recorded exports neither.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from itertools import chain
from typing import Any

from prometheus_client import Counter, Gauge

from serving.protocol import REASONS
from symptom_dx.model import TrainingReference
from symptom_dx.vocabulary import vocabulary

FORMS = ("names", "vector")


def _per_model(kind: type[Counter] | type[Gauge], name: str, label: str, doc: str) -> Any:
    return kind(f"disease_classifier_{name}", doc, ["model_name", label])


PREDICTIONS = _per_model(Counter, "predictions", "disease", "Patients ranked, by top disease")
SYMPTOMS_SEEN = _per_model(Counter, "symptoms_seen", "symptom", "Symptoms reported (input drift)")
REJECTED = _per_model(Counter, "rejected_requests", "reason", "Requests answered 400, by reason")
PATIENTS = _per_model(Counter, "patients", "form", "Patients ranked, by input form")
# What the model saw in training: shares of its distinct training patterns (drift reference).
TRAINING_SYMPTOM_SHARE = _per_model(
    Gauge, "training_symptom_share", "symptom", "Share of training patterns with each symptom"
)
TRAINING_DISEASE_SHARE = _per_model(
    Gauge, "training_disease_share", "disease", "Share of training patterns of each disease"
)


class ModelMetrics:
    """The label children of one served model, bound once (cheap per request)."""

    def __init__(
        self, model_name: str, classes: Sequence[str], reference: TrainingReference | None
    ):
        self._top = {c: PREDICTIONS.labels(model_name, c) for c in classes}
        self._seen = [SYMPTOMS_SEEN.labels(model_name, s) for s in vocabulary().ids]
        self._forms = {f: PATIENTS.labels(model_name, f) for f in FORMS}
        self._rejected = {r: REJECTED.labels(model_name, r) for r in REASONS}
        if reference is not None:
            for symptom, share in reference.symptom_share.items():
                TRAINING_SYMPTOM_SHARE.labels(model_name, symptom).set(share)
            for disease, share in reference.disease_share.items():
                TRAINING_DISEASE_SHARE.labels(model_name, disease).set(share)

    def ranked(self, present: Sequence[Sequence[int]], top: Sequence[str], form: str) -> None:
        """Count ranked patients: each one's ``present`` positions and ``top`` disease."""
        if len(present) == 1:  # the common case: a few increments
            self._top[top[0]].inc()
            for j in present[0]:
                self._seen[j].inc()
        else:  # one increment per distinct label, not per patient and symptom
            for disease, count in collections.Counter(top).items():
                self._top[disease].inc(count)
            for j, count in collections.Counter(chain.from_iterable(present)).items():
                self._seen[j].inc(count)
        self._forms[form].inc(len(present))

    def rejected(self, reason: str) -> None:
        self._rejected[reason].inc()
