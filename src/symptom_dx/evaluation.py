"""Honest evaluation: split by distinct symptom pattern, score partial-symptom vignettes.

The Kaggle rows repeat 304 distinct patterns, and Testing.csv repeats Training.csv: a random
row split puts the same pattern on both sides and reports 100% accuracy. We hold out whole
patterns per disease, and since real users type three or four symptoms, we score vignettes
made of k symptoms drawn from each held-out pattern, as well as the full patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from symptom_dx.config import DEFAULTS
from symptom_dx.dataset import Dataset
from symptom_dx.vocabulary import vocabulary

VIGNETTE_SIZES = (2, 3, 4)


@dataclass(frozen=True)
class Split:
    train: Dataset
    test: Dataset


def pattern_split(ds: Dataset, test_fraction: float, seed: int) -> Split:
    """Hold out a share of each disease's distinct patterns (at least one where it has two).

    Returns distinct patterns on both sides: duplicated rows add nothing but weight.
    """
    distinct = ds.distinct()
    rng = np.random.default_rng(seed)
    test_idx: list[int] = []
    for label in sorted(set(map(str, distinct.y))):
        idx = np.flatnonzero(distinct.y.astype(str) == label)
        if len(idx) < 2:
            continue
        n_test = max(1, round(test_fraction * len(idx)))
        test_idx.extend(rng.choice(idx, size=n_test, replace=False).tolist())
    is_test = np.zeros(len(distinct), dtype=bool)
    is_test[test_idx] = True
    return Split(
        train=Dataset(distinct.X[~is_test], distinct.y[~is_test], ds.source),
        test=Dataset(distinct.X[is_test], distinct.y[is_test], ds.source),
    )


def vignettes(
    ds: Dataset, k: int, per_pattern: int = DEFAULTS.vignettes_per_pattern, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``per_pattern`` random k-symptom subsets of every pattern (all of it if it has fewer)."""
    rng = np.random.default_rng(seed + 1000 * k)
    rows, labels = [], []
    for row, label in zip(ds.X, ds.y, strict=True):
        present = np.flatnonzero(row)
        for _ in range(per_pattern):
            v = np.zeros_like(row)
            v[rng.choice(present, size=min(k, len(present)), replace=False)] = 1
            rows.append(v)
            labels.append(label)
    return np.array(rows), np.array(labels, dtype=object)


def score(proba: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    """top-1, top-3, macro-F1, log-loss and expected calibration error (15 bins)."""
    from sklearn.metrics import f1_score, log_loss  # where used: see symptom_dx.candidates

    y = np.asarray(y).astype(str)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[v] for v in y])
    order = np.argsort(-proba, axis=1)
    top1 = order[:, 0]
    confidence = proba[np.arange(len(y)), top1]
    correct = top1 == truth
    bins = np.minimum((confidence * 15).astype(int), 14)
    ece = sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
        for b in range(15)
        if (bins == b).any()
    )
    return {
        "top1": float(correct.mean()),
        "top3": float((order[:, :3] == truth[:, None]).any(axis=1).mean()),
        "macro_f1": float(
            f1_score(truth, top1, labels=range(len(classes)), average="macro", zero_division=0)
        ),
        "log_loss": float(log_loss(truth, np.clip(proba, 1e-15, 1), labels=range(len(classes)))),
        "ece": float(ece),
    }


def evaluate(
    model: Any, test: Dataset, per_pattern: int = DEFAULTS.vignettes_per_pattern, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Scores on full held-out patterns and on k-symptom vignettes, k in ``VIGNETTE_SIZES``."""
    results = {"full": score(model.predict_proba(test.X), test.y, model.classes)}
    for k in VIGNETTE_SIZES:
        X, y = vignettes(test, k, per_pattern, seed)
        results[f"k{k}"] = score(model.predict_proba(X), y, model.classes)
    return results


def confusion(
    model: Any,
    test: Dataset,
    k: int = 3,
    per_pattern: int = DEFAULTS.vignettes_per_pattern,
    seed: int = 0,
) -> np.ndarray:
    """Confusion matrix on k-symptom vignettes (rows: truth, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    X, y = vignettes(test, k, per_pattern, seed)
    predicted = np.asarray(model.classes)[model.predict_proba(X).argmax(axis=1)]
    return confusion_matrix(y.astype(str), predicted, labels=model.classes)


def smoke_set(
    model: Any, test: Dataset, k: int = 3, size: int = 40, seed: int = 0
) -> list[dict[str, Any]]:
    """A fixed set of k-symptom vignettes from held-out patterns (one per disease first) that
    the model ranks right (truth in its top 3) offline, with its offline answers: what a live
    server of the same model must reproduce before it takes traffic."""
    X, y = vignettes(test, k, per_pattern=1, seed=seed)
    proba = model.predict_proba(X)
    order = np.argsort(-proba, axis=1)[:, :3]
    chosen: list[int] = []
    seen: set[str] = set()
    for first_pass in (True, False):
        for i, label in enumerate(map(str, y)):
            if len(chosen) == size or i in chosen or (first_pass and label in seen):
                continue
            if label in (model.classes[j] for j in order[i]):
                chosen.append(i)
                seen.add(label)
    ids = np.asarray(model.classes)
    return [
        {
            "symptoms": [vocabulary().ids[j] for j in np.flatnonzero(X[i])],
            "disease": str(y[i]),
            "top3": [str(ids[j]) for j in order[i]],
            "probabilities": [float(proba[i, j]) for j in order[i]],
        }
        for i in chosen
    ]
