"""Feature building: symptom ids -> 0/1 vectors in the vocabulary's order, and back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from symptom_dx.vocabulary import vocabulary


def fold_duplicates(X: np.ndarray) -> np.ndarray:
    """Move a 1 in a duplicate column (``fluid_overload_duplicate``) to the column it repeats."""
    dups = vocabulary().duplicates
    if not dups:
        return X
    X = X.copy()
    for dup, used in dups.items():
        X[:, used] = np.maximum(X[:, used], X[:, dup])
        X[:, dup] = 0
    return X


def encode(patients: Sequence[Sequence[str]], dtype: type = np.float32) -> np.ndarray:
    """Canonical id lists (one per patient) -> [N, 132] 0/1 matrix."""
    vocab = vocabulary()
    X = np.zeros((len(patients), vocab.size), dtype=dtype)
    for i, ids in enumerate(patients):
        X[i, [vocab.position(s) for s in ids]] = 1
    return X


def decode(row: np.ndarray) -> list[str]:
    """A 0/1 vector -> the ids of its present symptoms."""
    ids = vocabulary().ids
    return [ids[i] for i in np.flatnonzero(row)]


def symptom_dropout(
    X: np.ndarray,
    y: np.ndarray,
    samples_per_row: int,
    min_present: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment rows with random partial symptom sets, as real users type 3 or 4 symptoms.

    For every row, ``samples_per_row`` copies keep a random subset of its present symptoms,
    the subset size drawn uniformly from ``min_present`` to all of them. The original rows are
    kept too.
    """
    rng = np.random.default_rng(seed)
    out_X = [X]
    out_y = [y]
    for row, label in zip(X, y, strict=True):
        present = np.flatnonzero(row)
        if len(present) == 0 or samples_per_row <= 0:
            continue
        lo = min(min_present, len(present))
        sizes = rng.integers(lo, len(present) + 1, size=samples_per_row)
        block = np.zeros((samples_per_row, X.shape[1]), dtype=X.dtype)
        for j, k in enumerate(sizes):
            block[j, rng.choice(present, size=k, replace=False)] = 1
        out_X.append(block)
        out_y.append(np.full(samples_per_row, label, dtype=y.dtype))
    return np.concatenate(out_X), np.concatenate(out_y)
