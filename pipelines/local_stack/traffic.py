"""Synthetic patients for watching drift: normal traffic and a shifted mix.

*Normal* traffic is drawn like the evaluation's: k-symptom vignettes of the held-out patterns
(``symptom_dx.evaluation.vignettes``, k=3). *Shifted* traffic reports only respiratory
symptoms. The drift thresholds of ``manifests/monitoring/prometheusrule.yaml`` were set by
measuring both (``bench/drift_baseline.py``), and the live test sends both to a real model
server scraped by a real Prometheus.

``total_variation`` is the distance the recording rules compute, in Python, so the measured
numbers and the alert speak about the same quantity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from symptom_dx.dataset import Dataset
from symptom_dx.features import decode, encode
from symptom_dx.model import SymptomClassifier

Patient = tuple[str, ...]  # canonical symptom ids reported present

# Symptoms of the airways and lungs: a clinic's flu season, or a client that only sends these.
RESPIRATORY: tuple[str, ...] = (
    "continuous_sneezing",
    "patches_in_throat",
    "cough",
    "breathlessness",
    "phlegm",
    "throat_irritation",
    "sinus_pressure",
    "runny_nose",
    "congestion",
    "chest_pain",
    "loss_of_smell",
    "mucoid_sputum",
    "rusty_sputum",
    "blood_in_sputum",
)


def normal_patients(
    held_out: Dataset, k: int = 3, per_pattern: int = 20, seed: int = 0
) -> list[Patient]:
    """The evaluation's k-symptom vignettes of the held-out patterns, as symptom-id tuples."""
    from symptom_dx.evaluation import vignettes

    X, _ = vignettes(held_out, k, per_pattern, seed)
    return [tuple(decode(row)) for row in X]


def top_diseases(model: SymptomClassifier, patients: Sequence[Patient]) -> list[str]:
    """The disease ``model`` ranks first for each patient."""
    return [model.classes[c] for c in model.predict_proba(encode(patients)).argmax(axis=1)]


def shifted_patients(
    n: int, k: int = 3, seed: int = 0, symptoms: Sequence[str] = RESPIRATORY
) -> list[Patient]:
    """``n`` patients reporting ``k`` symptoms each, drawn only from ``symptoms``."""
    rng = np.random.default_rng(seed)
    return [tuple(rng.choice(symptoms, size=k, replace=False).tolist()) for _ in range(n)]


def symptom_counts(patients: Iterable[Patient]) -> Counter[str]:
    """How often each symptom is reported: what ``disease_classifier_symptoms_seen`` counts."""
    return Counter(s for patient in patients for s in patient)


def total_variation(observed: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """Half the L1 distance between two mixes, each normalised to sum to 1 (0 = same mix,
    1 = disjoint), over the union of their keys: the recording rules' distance."""
    p_total = sum(observed.values()) or 1.0
    q_total = sum(reference.values()) or 1.0
    keys = set(observed) | set(reference)
    return 0.5 * sum(
        abs(observed.get(key, 0.0) / p_total - reference.get(key, 0.0) / q_total) for key in keys
    )
