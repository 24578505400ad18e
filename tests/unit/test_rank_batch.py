"""The array-at-a-time ``rank`` answers exactly what the row-at-a-time one did (issue 21).

``reference_rank`` is the row-by-row implementation ``SymptomClassifier.rank`` had before
(kept here, and used by bench/rank_bench.py, as the definition of the right answer): the same
diseases in the same order (ties by class index), the same probabilities (to 1e-12), the same
explanations and next question, for random patients of every algorithm, every top_k, with and
without denied symptoms, and with tied probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from symptom_dx.candidates import ALGORITHMS
from symptom_dx.model import EXPLAINED_SUBSET_SIZE, Differential, SymptomClassifier
from symptom_dx.vocabulary import vocabulary


# -- the reference: SymptomClassifier's rank before issue 21, verbatim but for `self` -------------
def reference_proba_positions(
    model: SymptomClassifier, patients: Sequence[Sequence[int]]
) -> np.ndarray:
    if model._linear:
        if len(patients) == 1:
            logits = (model._weights[list(patients[0])].sum(axis=0) + model._bias)[None, :]
        else:
            rows = [model._weights[list(p)].sum(axis=0) for p in patients]
            logits = np.stack(rows) + model._bias
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    X = np.zeros((len(patients), model.profiles.shape[1]), dtype=np.float32)
    for i, p in enumerate(patients):
        X[i, list(p)] = 1
    return model.predict_proba(X)


def reference_next_question(
    model: SymptomClassifier, p: np.ndarray, asked: np.ndarray
) -> str | None:
    candidates = model._askable & ~asked
    if not candidates.any():
        return None
    n = model._likelihood.shape[1]
    r = p @ model._question_terms
    p_yes = r[:n]
    h = p_yes * np.log(p_yes) + (1 - p_yes) * np.log1p(-p_yes) - r[n:]
    h[~candidates] = np.inf
    return model._ids[int(np.argmin(h))]


def reference_rank(
    model: SymptomClassifier,
    present: Sequence[Sequence[int]],
    top_k: int = 5,
    absent: Sequence[Sequence[int]] | None = None,
    proba: np.ndarray | None = None,
) -> list[Differential]:
    if proba is None:
        proba = reference_proba_positions(model, present)
    ids = model._ids
    k = max(1, min(top_k, len(model.classes)))
    out: list[Differential] = []
    for i, pos in enumerate(present):
        p = proba[i]
        denied = list(absent[i]) if absent else []
        if denied:
            p = p * np.prod(1 - model._likelihood[:, denied], axis=1)
            p = p / p.sum()
        top = np.argsort(-p, kind="stable")[:k].tolist()
        given_set = set(pos)
        given_sorted = sorted(given_set)
        supporting, missing = [], []
        for c in top:
            typical = model._typical_sets[c]
            supporting.append([ids[j] for j in given_sorted if j in typical])
            # (unlike the old rank: a symptom the patient denied is not missing, it was asked)
            missing.append(
                [
                    ids[j]
                    for j in model._typical_by_share[c]
                    if j not in given_set and j not in denied
                ]
            )
        asked = np.zeros(model.profiles.shape[1], dtype=bool)
        asked[given_sorted] = True
        asked[denied] = True
        out.append(
            Differential(
                diseases=[model.classes[c] for c in top],
                probabilities=[float(p[c]) for c in top],
                supporting=supporting,
                missing=missing,
                next_question=reference_next_question(model, p, asked),
            )
        )
    return out


# -- patients ------------------------------------------------------------------------------------
def random_patients(
    X: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[list[list[int]], list[list[int]]]:
    """(present, absent) position lists, in random order: half drawn from a training pattern
    (1 to 6 of its symptoms, as users type them), half anywhere in the vocabulary (1 to 17);
    now and then a repeated position or an empty list, and 0 to 5 denied symptoms (none for
    about a third of the patients)."""
    size = X.shape[1]
    present: list[list[int]] = []
    absent: list[list[int]] = []
    for _ in range(n):
        if rng.random() < 0.5:
            pattern = np.flatnonzero(X[rng.integers(len(X))])
            k = int(rng.integers(1, min(6, len(pattern)) + 1))
            given = rng.choice(pattern, size=k, replace=False).tolist()
        else:
            given = rng.choice(size, size=int(rng.integers(1, 18)), replace=False).tolist()
        u = rng.random()
        if u < 0.03:
            given.append(given[0])  # a repeated position counts twice in the logits
        elif u < 0.05:
            given = []
        others = np.setdiff1d(np.arange(size), given)
        denied = rng.choice(others, size=int(rng.integers(0, 6)), replace=False).tolist()
        absent.append(denied if rng.random() > 0.33 else [])
        present.append(given)
    return present, absent


def assert_same(new: list[Differential], old: list[Differential]) -> None:
    assert len(new) == len(old)
    for i, (a, b) in enumerate(zip(new, old, strict=True)):
        assert a.diseases == b.diseases, i
        assert len(a.probabilities) == len(b.probabilities), i
        assert max(abs(x - y) for x, y in zip(a.probabilities, b.probabilities, strict=True)) <= (
            1e-12
        ), i
        assert all(type(x) is float for x in a.probabilities), i
        assert a.supporting == b.supporting, i
        assert a.missing == b.missing, i
        assert a.next_question == b.next_question, i


@pytest.fixture(scope="module")
def patterns(training_set):
    d = training_set.distinct()
    return d.X, d.y


# rank takes a forest's probabilities as they come (predict_proba, no fast path): 10 trees give
# the same kind of input as the pipeline's 100 - vote shares, many of them tied - and each of
# the many predict_proba calls of rank and of the reference costs a tenth.
PARAMS = {"random_forest": {"n_estimators": 10}}


@pytest.fixture(scope="module", params=ALGORITHMS)
def model(request, patterns):
    X, y = patterns
    params = PARAMS.get(request.param, {})
    return SymptomClassifier.train(X, y, request.param, params, dropout_samples=10, seed=0)


# -- the comparisons -----------------------------------------------------------------------------
@pytest.mark.parametrize("denied", [False, True], ids=["present-only", "with-denied"])
def test_rank_matches_reference_for_every_top_k(model, patterns, denied):
    """The reference's top k is the first k of its whole ranking (a stable sort, then a cut;
    the question does not depend on k): ranked once, compared with every top_k."""
    rng = np.random.default_rng(21 + denied)
    present, absent = random_patients(patterns[0], 64, rng)
    absent_arg = absent if denied else None
    whole = reference_rank(model, present, len(model.classes), absent_arg)
    for top_k in range(1, len(model.classes) + 1):
        expected = [
            Differential(
                diseases=d.diseases[:top_k],
                probabilities=d.probabilities[:top_k],
                supporting=d.supporting[:top_k],
                missing=d.missing[:top_k],
                next_question=d.next_question,
            )
            for d in whole
        ]
        assert_same(model.rank(present, top_k, absent_arg), expected)


@pytest.mark.parametrize("batch", [1, 2, 3, 8, 63, 64, 65])
def test_rank_matches_reference_for_every_batch_size(model, patterns, batch):
    rng = np.random.default_rng(batch)
    present, absent = random_patients(patterns[0], 4 * batch, rng)
    for start in range(0, len(present), batch):
        rows = slice(start, start + batch)
        for top_k in (1, 3, 5):
            for denied in (None, absent[rows]):
                assert_same(
                    model.rank(present[rows], top_k, denied),
                    reference_rank(model, present[rows], top_k, denied),
                )


def test_rank_matches_reference_on_tied_probabilities(model, patterns):
    """Probabilities rounded to 2 or 1 decimals (as the random forest's vote shares are): ties in
    the top-k and at its edge keep class-index order, tied questions the lowest position."""
    rng = np.random.default_rng(7)
    for decimals in (2, 1):
        for top_k in (1, 2, 3, 5, 10, 40, 41):
            present, absent = random_patients(patterns[0], 64, rng)
            proba = np.round(model.predict_proba_positions(present), decimals)
            proba[proba.sum(axis=1) == 0, 0] = 1  # a row of zeros is no distribution
            proba /= proba.sum(axis=1, keepdims=True)  # equal values stay equal
            for denied in (None, absent):
                before = proba.copy()
                assert_same(
                    model.rank(present, top_k, denied, proba=proba),
                    reference_rank(model, present, top_k, denied, proba=proba),
                )
                assert np.array_equal(proba, before)  # the caller's array is not changed
            single = [
                model.rank([p], top_k, [a], proba=proba[i : i + 1])
                for i, (p, a) in enumerate(zip(present[:8], absent[:8], strict=True))
            ]
            for i, got in enumerate(single):
                assert_same(
                    got,
                    reference_rank(model, [present[i]], top_k, [absent[i]], proba=proba[i : i + 1]),
                )


def test_uniform_probabilities_tie_everything(model):
    """All 41 classes tied: the order is the class order, the question the lowest position."""
    v = vocabulary()
    present = [[v.position("itching")], [v.position("cough"), v.position("high_fever")]] * 3
    proba = np.full((len(present), len(model.classes)), 1 / len(model.classes))
    for top_k in (1, 5, 41):
        for absent in (None, [[], [v.position("vomiting")]] * 3):
            got = model.rank(present, top_k, absent, proba=proba)
            assert_same(got, reference_rank(model, present, top_k, absent, proba=proba))
        assert got[0].diseases == model.classes[:top_k]


def test_nothing_left_to_ask(model):
    """Every askable symptom given or denied: no next question, in both paths."""
    askable = np.flatnonzero(model._askable).tolist()
    present = [askable[:10], askable[:10]]
    absent = [askable[10:], askable[10:]]
    for rows in (1, 2):
        got = model.rank(present[:rows], 3, absent[:rows])
        assert_same(got, reference_rank(model, present[:rows], 3, absent[:rows]))
        assert got[0].next_question is None
        assert model.rank_arrays(present[:rows], 3, absent[:rows]).next_question[0] == -1


# -- the array API -------------------------------------------------------------------------------
def test_rank_arrays_is_rank_as_arrays(model, patterns):
    rng = np.random.default_rng(3)
    present, absent = random_patients(patterns[0], 64, rng)
    ids = vocabulary().ids
    for rows in (1, 64):
        ranked = model.rank_arrays(present[:rows], 5, absent[:rows])
        assert ranked.top.shape == ranked.probabilities.shape == (rows, 5)
        assert ranked.next_question.shape == (rows,)
        assert np.issubdtype(ranked.top.dtype, np.integer)
        assert np.issubdtype(ranked.next_question.dtype, np.integer)
        assert ranked.probabilities.dtype == np.float64
        for i, d in enumerate(reference_rank(model, present[:rows], 5, absent[:rows])):
            assert [model.classes[c] for c in ranked.top[i]] == d.diseases
            assert ranked.probabilities[i].tolist() == pytest.approx(d.probabilities, abs=1e-12)
            q = int(ranked.next_question[i])
            assert (ids[q] if q >= 0 else None) == d.next_question
        supporting, missing = model.explain(present[:rows], ranked.top, absent[:rows])
        differentials = model.rank(present[:rows], 5, absent[:rows])
        assert [d.supporting for d in differentials] == supporting
        assert [d.missing for d in differentials] == missing
        for separator in (",", "|"):
            joined = model.explain_joined(present[:rows], ranked.top, separator, absent[:rows])
            assert joined == (
                [separator.join(s) for d in differentials for s in d.supporting],
                [separator.join(m) for d in differentials for m in d.missing],
            )
            # nothing denied: each cell read from the table, or built past the table's sets
            given, typical_missing = model.explain(present[:rows], ranked.top)
            assert model.explain_joined(present[:rows], ranked.top, separator) == (
                [separator.join(s) for row in given for s in row],
                [separator.join(m) for row in typical_missing for m in row],
            )
            if rows > 1:
                assert max(len(s) for row in given for s in row) > EXPLAINED_SUBSET_SIZE
            columns = model.rank_columns(present[:rows], 5, absent[:rows], separator)
            assert (columns.k, columns.diseases, columns.top) == (
                5,
                [c for d in differentials for c in d.diseases],
                [d.diseases[0] for d in differentials],
            )
            assert columns.probabilities.tolist() == [d.probabilities for d in differentials]
            assert (columns.supporting, columns.missing) == joined
            assert columns.next_question == [d.next_question or "" for d in differentials]
            assert columns.out_of_pattern == [d.out_of_pattern for d in differentials]


def test_predict_proba_positions_is_the_same_floats_in_any_batch(model, patterns):
    """Batching or padding never changes a patient's probabilities, not even in the last bit."""
    rng = np.random.default_rng(5)
    present, _ = random_patients(patterns[0], 64, rng)
    batch = model.predict_proba_positions(present)
    assert np.array_equal(batch, reference_proba_positions(model, present))
    for i in range(0, 64, 9):
        assert np.array_equal(model.predict_proba_positions([present[i]])[0], batch[i])


def test_explanations_are_fresh_lists(model):
    """``missing`` lists are copies of the model's tables: a caller may change them."""
    v = vocabulary()
    (first,) = model.rank([[v.position("itching")]], top_k=3)
    for m in first.missing:
        m.clear()
    (again,) = model.rank([[v.position("itching")]], top_k=3)
    assert again == reference_rank(model, [[v.position("itching")]], 3)[0]
