"""``SymptomClassifier.rank``, row at a time and array at a time, side by side.

"old" is the row-by-row implementation kept as ``reference_rank`` in
tests/unit/test_rank_batch.py (which checks that both answer alike); "new" is
``SymptomClassifier.rank``; "arrays" is what a server needs for its output tensors without
building ``Differential`` objects (``rank_arrays`` + ``explain_joined``). For each algorithm
(trained as the pipeline trains: its split, defaults and symptom dropout), for N = 1, 8 and 64
patients of 3 symptoms from held-out patterns, without and with 2 denied symptoms each: the
median time per call, in interleaved rounds (old, new, arrays, old, ...: the machine is
shared and noisy), and old / new as a ratio (> 1: new is faster).

Then the choices inside the batch path, timed the same way on 64 rows: logits by a
gather-sum or by a dense 0/1 matrix product, top-k by a stable sort, a default sort with tie
repair or argpartition, explanations as before or from the precomputed tables (as lists, or
joined as the output tensors hold them), next questions for all rows or row by row.

    .venv/bin/python bench/rank_bench.py [--data-dir DIR] [--rounds 15] [--ms 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from symptom_dx.candidates import ALGORITHMS
from symptom_dx.config import DEFAULTS
from symptom_dx.dataset import load_dataset
from symptom_dx.evaluation import pattern_split, vignettes
from symptom_dx.model import RankedArrays, SymptomClassifier, _padded
from symptom_dx.steps import hyperparameters

REPO = Path(__file__).resolve().parent.parent
SIZES = (1, 8, 64)


def reference() -> object:
    """tests/unit/test_rank_batch.py as a module: the old rank lives there, once."""
    path = REPO / "tests" / "unit" / "test_rank_batch.py"
    spec = importlib.util.spec_from_file_location("rank_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(data_dir: Path) -> tuple[dict[str, SymptomClassifier], list[list[int]]]:
    """Every candidate as the pipeline trains it, and 64 held-out 3-symptom patients."""
    ds = load_dataset(data_dir / "Training.csv")
    split = pattern_split(ds, DEFAULTS.test_fraction, DEFAULTS.split_seed)
    params = hyperparameters(**DEFAULTS.hyperparameter_values())
    models = {
        a: SymptomClassifier.train(
            split.train.X, split.train.y, a, params[a], DEFAULTS.dropout_samples, DEFAULTS.seed
        )
        for a in ALGORITHMS
    }
    X, _ = vignettes(split.test, 3, per_pattern=2, seed=0)
    rows = [np.flatnonzero(r).tolist() for r in X[np.random.default_rng(0).permutation(len(X))]]
    return models, rows[:64]


def denials(present: list[list[int]], per_patient: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for given in present:
        others = np.setdiff1d(np.arange(132), given)
        out.append(rng.choice(others, size=per_patient, replace=False).tolist())
    return out


def tensors(
    model: SymptomClassifier, present: list[list[int]], absent: list[list[int]] | None
) -> tuple[RankedArrays, tuple[list[str], list[str]]]:
    """What a server needs for the contract's output tensors, without Differential objects."""
    ranked = model.rank_arrays(present, 5, absent)
    return ranked, model.explain_joined(present, ranked.top)


def compare(fns: dict[str, Callable[[], object]], rounds: int, ms: float) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds."""
    reps = {}
    for name, fn in fns.items():  # warm up, and size each sample to about `ms` milliseconds
        fn()
        t0 = time.perf_counter()
        fn()
        reps[name] = max(1, int(ms / 1000 / max(time.perf_counter() - t0, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = reps[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f}"


def rank_table(
    models: dict[str, SymptomClassifier], patients: list[list[int]], rounds: int, ms: float
) -> None:
    ref = reference()
    absent_all = denials(patients, 2)
    print("rank(): median microseconds per call; ratio = old / new (> 1: new is faster)")
    print(
        f"{'algorithm':<20} {'N':>3} {'denied':>6} {'old':>9} {'new':>9} {'arrays':>9}"
        f" {'old/new':>8} {'old/arrays':>10}"
    )
    for algorithm, model in models.items():
        for n in SIZES:
            for denied in (False, True):
                present = patients[:n]
                absent = absent_all[:n] if denied else None
                t = compare(
                    {
                        "old": lambda m=model, p=present, a=absent: ref.reference_rank(m, p, 5, a),
                        "new": lambda m=model, p=present, a=absent: m.rank(p, 5, a),
                        "arrays": lambda m=model, p=present, a=absent: tensors(m, p, a),
                    },
                    rounds,
                    ms,
                )
                print(
                    f"{algorithm:<20} {n:>3} {'yes' if denied else 'no':>6} {us(t['old'])}"
                    f" {us(t['new'])} {us(t['arrays'])} {t['old'] / t['new']:>8.2f}"
                    f" {t['old'] / t['arrays']:>10.2f}",
                    flush=True,
                )


def parts_table(
    model: SymptomClassifier, patients: list[list[int]], rounds: int, ms: float
) -> None:
    """The alternatives inside the batch path, on 64 rows of the given linear model."""
    n = model.profiles.shape[1]
    rows = len(patients)
    dense_w = model._weights

    def gather() -> np.ndarray:
        return model._weights_padded[_padded(patients, n)].sum(axis=1) + model._bias

    def dense() -> np.ndarray:
        X = np.zeros((rows, n + 1))
        X[np.arange(rows)[:, None], _padded(patients, n)] = 1
        return X[:, :n] @ dense_w + model._bias

    p = model.predict_proba_positions(patients)
    k = 5

    def argpartition_top() -> np.ndarray:
        neg = -p
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(neg, part, 1).max(axis=1)[:, None]
        less, tie = neg < kth, neg == kth
        take = less | (tie & (np.cumsum(tie, axis=1) <= (k - less.sum(1))[:, None]))
        cols = np.nonzero(take)[1].reshape(rows, k)
        order = np.argsort(np.take_along_axis(neg, cols, 1), axis=1, kind="stable")
        return np.take_along_axis(cols, order, 1)

    def argsort_repair_top() -> np.ndarray:
        negated = -p
        order = np.argsort(negated, axis=1)
        head = np.take_along_axis(negated, order[:, : k + 1], axis=1)
        (tied,) = np.nonzero((head[:, 1:] == head[:, :-1]).any(axis=1))
        if len(tied):
            order[tied] = np.argsort(negated[tied], axis=1, kind="stable")
        return order[:, :k]

    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    assert np.array_equal(argsort_repair_top(), top) and np.array_equal(argpartition_top(), top)
    assert np.allclose(gather(), dense())
    ids = model._ids

    def old_explain() -> tuple[list, list]:
        supporting, missing = [], []
        for pos, classes in zip(patients, top.tolist(), strict=True):
            given_set = set(pos)
            given_sorted = sorted(given_set)
            row_supporting, row_missing = [], []
            for c in classes:
                typical = model._typical_sets[c]
                row_supporting.append([ids[j] for j in given_sorted if j in typical])
                row_missing.append(
                    [ids[j] for j in model._typical_by_share[c] if j not in given_set]
                )
            supporting.append(row_supporting)
            missing.append(row_missing)
        return supporting, missing

    present_idx = _padded(patients, n)
    no_denials = [[]] * rows
    denied_idx = _padded(no_denials, n)

    def questions_batch() -> np.ndarray:
        return model._next_positions(p, present_idx, denied_idx, patients, no_denials)

    def questions_rows() -> list[int]:
        return [model._next_position(p[i], patients[i]) for i in range(rows)]

    assert questions_batch().tolist() == questions_rows()
    assert old_explain() == model.explain(patients, top)
    t = compare(
        {
            "logits: gather-sum": gather,
            "logits: dense 0/1 @ W": dense,
            "top-k: stable argsort": lambda: np.argsort(-p, axis=1, kind="stable")[:, :k],
            "top-k: argsort + tie repair": argsort_repair_top,
            "top-k: argpartition + ties": argpartition_top,
            "explanations: before": old_explain,
            "explanations: tables": lambda: model.explain(patients, top),
            "explanations: joined, subset table": lambda: model.explain_joined(patients, top),
            "next questions: batch": questions_batch,
            "next questions: row by row": questions_rows,
        },
        rounds,
        ms,
    )
    print(f"\nparts of the batch path, {model.algorithm}, {rows} rows: median microseconds")
    for name, seconds in t.items():
        print(f"  {name:<32} {us(seconds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = REPO.parent / "shared/data/kaggle-disease-prediction"
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("DATA_DIR", default_data))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ms", type=float, default=4.0, help="length of one timed sample")
    args = parser.parse_args()
    models, patients = train(Path(args.data_dir))
    rank_table(models, patients, args.rounds, args.ms)
    parts_table(models["naive_bayes"], patients, args.rounds, args.ms)


if __name__ == "__main__":
    main()
