"""Our Prometheus metrics, served on ``/metrics`` beside KServe's latency histograms.

Label values are bounded by what the server serves, never by what clients send: the served
model's name, its classes, the vocabulary's ids, the input forms and the rejection reasons of
``serving.protocol.REASONS``. Every label set is exported from the model's load on. The two
counters every ranked patient adds to (by top disease, by symptom) are ``RankedCounts``.

The two training gauges describe what the model saw in training (``metadata.json``'s
``training_reference``, see ``symptom_dx.model.TrainingReference``): drift rules compare live
traffic with them. A model saved before the reference was recorded exports neither.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from serving.protocol import REASONS
from symptom_dx.model import TrainingReference
from symptom_dx.vocabulary import vocabulary

FORMS = ("names", "vector")
# prometheus_client's documented switch for the ``_created`` series, honoured here as well
_DISABLE_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "")
CREATED_SERIES = _DISABLE_CREATED.lower() not in ("true", "1", "t")


def _per_model(kind: type[Counter] | type[Gauge], name: str, label: str, doc: str) -> Any:
    return kind(f"disease_classifier_{name}", doc, ["model_name", label])


REJECTED = _per_model(Counter, "rejected_requests", "reason", "Requests answered 400, by reason")
PATIENTS = _per_model(Counter, "patients", "form", "Patients ranked, by input form")
# What the model saw in training: shares of its distinct training patterns (drift reference).
TRAINING_SYMPTOM_SHARE = _per_model(
    Gauge, "training_symptom_share", "symptom", "Share of training patterns with each symptom"
)
TRAINING_DISEASE_SHARE = _per_model(
    Gauge, "training_disease_share", "disease", "Share of training patterns of each disease"
)


class _Ranked:
    """One model's counts of ranked patients by top disease and of the symptoms they gave."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created = time.time()
        self.diseases: dict[str, int] = {}  # name -> slot of ``top``
        self.top = np.zeros(0, dtype=np.int64)
        self.seen = np.zeros(len(vocabulary().ids), dtype=np.int64)

    def add_diseases(self, classes: Sequence[str]) -> None:
        with self.lock:
            for c in classes:
                self.diseases.setdefault(c, len(self.diseases))
            grown = np.zeros(len(self.diseases) - len(self.top), dtype=np.int64)
            self.top = np.concatenate([self.top, grown])


class RankedCounts(Collector):
    """``disease_classifier_predictions_total`` (patients ranked, by top disease) and
    ``disease_classifier_symptoms_seen_total`` (symptoms reported: the input drift), counted
    in arrays and exported at each scrape as prometheus_client's Counters are (``_total`` and
    ``_created``, every label set from the model's load on). A batch adds to them in two array
    operations, where Counter children take one locked increment per label (64 patients:
    ~90 increments, ~100 us of a ~1.2 ms request)."""

    def __init__(self) -> None:
        self._models: dict[str, _Ranked] = {}
        self._lock = threading.Lock()

    def model(self, model_name: str, classes: Sequence[str]) -> _Ranked:
        """The counts of ``model_name`` (a model loaded again under its name counts on)."""
        with self._lock:
            counts = self._models.setdefault(model_name, _Ranked())
        counts.add_diseases(classes)
        return counts

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[CounterMetricFamily]:
        predictions, seen = self._families()
        ids = vocabulary().ids
        with self._lock:
            models = list(self._models.items())
        for name, counts in models:
            with counts.lock:
                top, symptoms = counts.top.tolist(), counts.seen.tolist()
                diseases = list(counts.diseases)
            created = counts.created if CREATED_SERIES else None
            for disease, value in zip(diseases, top, strict=True):
                predictions.add_metric([name, disease], value, created=created)
            for symptom, value in zip(ids, symptoms, strict=True):
                seen.add_metric([name, symptom], value, created=created)
        yield predictions
        yield seen

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        labels = ["model_name"]
        return (
            CounterMetricFamily(
                "disease_classifier_predictions",
                "Patients ranked, by top disease",
                labels=[*labels, "disease"],
            ),
            CounterMetricFamily(
                "disease_classifier_symptoms_seen",
                "Symptoms reported (input drift)",
                labels=[*labels, "symptom"],
            ),
        )


RANKED = RankedCounts()
REGISTRY.register(RANKED)


class ModelMetrics:
    """The counts and label children of one served model, bound once (cheap per request)."""

    def __init__(
        self, model_name: str, classes: Sequence[str], reference: TrainingReference | None
    ):
        self._ranked = RANKED.model(model_name, classes)
        self._forms = {f: PATIENTS.labels(model_name, f) for f in FORMS}
        self._rejected = {r: REJECTED.labels(model_name, r) for r in REASONS}
        if reference is not None:
            for symptom, share in reference.symptom_share.items():
                TRAINING_SYMPTOM_SHARE.labels(model_name, symptom).set(share)
            for disease, share in reference.disease_share.items():
                TRAINING_DISEASE_SHARE.labels(model_name, disease).set(share)

    def ranked(self, present: Sequence[Sequence[int]], top: Sequence[str], form: str) -> None:
        """Count ranked patients: each one's ``present`` positions and ``top`` disease."""
        counts = self._ranked
        if len(present) == 1:  # the common case: a few increments
            with counts.lock:
                counts.top[counts.diseases[top[0]]] += 1
                for j in present[0]:
                    counts.seen[j] += 1
        else:
            slots = np.fromiter((counts.diseases[d] for d in top), dtype=np.intp)
            given = np.fromiter(chain.from_iterable(present), dtype=np.intp)
            with counts.lock:
                counts.top += np.bincount(slots, minlength=len(counts.top))
                counts.seen += np.bincount(given, minlength=len(counts.seen))
        self._forms[form].inc(len(present))

    def rejected(self, reason: str) -> None:
        self._rejected[reason].inc()
