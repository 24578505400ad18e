"""An honest "none of these fits" (issue 20): symptom sets unlike every disease pattern are
flagged, symptoms of a pattern the model never saw are not, on a model trained the way the
pipeline trains it (its split, defaults and symptom dropout; calibrated at training time on
the training patterns only, so the held-out patterns below are new to it)."""

import json

import numpy as np
import pytest

from symptom_dx.config import DEFAULTS
from symptom_dx.errors import SymptomDxError
from symptom_dx.evaluation import vignettes
from symptom_dx.model import (
    METADATA_FILE,
    OUT_OF_PATTERN,
    OUT_OF_PATTERN_QUANTILE,
    SymptomClassifier,
)
from symptom_dx.vocabulary import vocabulary


@pytest.fixture(scope="module")
def trained(default_candidate):
    return default_candidate


@pytest.fixture(scope="module")
def model(trained):
    return trained[0]


@pytest.fixture(scope="module")
def split(trained):
    return trained[1]


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("oop") / "m")


def unlike_every_pattern(training_set, n: int, seed: int = 0) -> list[list[int]]:
    """``n`` random sets of 3 symptoms a user can pick (selectable, in some pattern) that no
    distinct pattern of the whole data set (training and held-out sides) has together."""
    patterns = training_set.distinct().X.astype(bool)
    selectable = [s.position for s in vocabulary().selectable]
    pool = [j for j in selectable if patterns[:, j].any()]
    rng = np.random.default_rng(seed)
    sets: list[list[int]] = []
    while len(sets) < n:
        chosen = rng.choice(pool, size=3, replace=False)
        if not patterns[:, chosen].all(axis=1).any():
            sets.append(chosen.tolist())
    return sets


def held_out_vignettes(split, k: int = 3) -> list[list[int]]:
    X, _ = vignettes(split.test, k, DEFAULTS.vignettes_per_pattern, seed=0)
    return [np.flatnonzero(row).tolist() for row in X]


def test_the_threshold_is_calibrated_at_training(model):
    table = model.metadata[OUT_OF_PATTERN]
    assert table["quantile"] == OUT_OF_PATTERN_QUANTILE
    assert table["vignette_size"] == 3
    assert table["vignettes"] >= 1000
    assert 0 <= table["flagged"] <= OUT_OF_PATTERN_QUANTILE
    assert model.out_of_pattern_threshold == table["threshold"] < 0


def test_sets_unlike_every_pattern_are_flagged(model, training_set):
    sets = unlike_every_pattern(training_set, 2000)
    rate = float(model.out_of_pattern(sets).mean())
    print(f"random 3-symptom sets in no pattern: {rate:.1%} flagged")
    assert rate >= 0.90


@pytest.mark.parametrize("k", [3, 2, 4])
def test_vignettes_of_held_out_patterns_are_rarely_flagged(model, split, k):
    patients = held_out_vignettes(split, k)
    rate = float(model.out_of_pattern(patients).mean())
    print(f"k = {k} vignettes of held-out patterns: {rate:.1%} flagged")
    assert rate <= 0.05


def test_whole_patterns_are_never_flagged(model, training_set):
    patients = [np.flatnonzero(r).tolist() for r in training_set.distinct().X]
    assert not model.out_of_pattern(patients).any()


def test_pattern_score(model):
    v = vocabulary()
    itching, rash = v.position("itching"), v.position("skin_rash")
    scores = model.pattern_score([[itching, rash], [rash, itching, rash], [], [itching]])
    assert scores.shape == (4,)
    assert scores[0] == scores[1]  # order and repeats do not matter
    assert scores[2] == 0  # nothing given: nothing out of pattern
    assert (scores <= 0).all()


def test_a_saved_model_scores_and_flags_alike(model, saved, split, training_set):
    loaded = SymptomClassifier.load(saved)
    patients = held_out_vignettes(split) + unlike_every_pattern(training_set, 200, seed=1)
    assert loaded.metadata[OUT_OF_PATTERN] == model.metadata[OUT_OF_PATTERN]
    assert np.array_equal(loaded.pattern_score(patients), model.pattern_score(patients))
    assert np.array_equal(loaded.out_of_pattern(patients), model.out_of_pattern(patients))


def test_a_model_saved_before_the_threshold_flags_nothing(saved, training_set, tmp_path):
    meta = json.loads((saved / METADATA_FILE).read_text())
    del meta[OUT_OF_PATTERN]
    old = tmp_path / "old"
    old.mkdir()
    (old / METADATA_FILE).write_text(json.dumps(meta))
    (old / "model.joblib").write_bytes((saved / "model.joblib").read_bytes())
    loaded = SymptomClassifier.load(old)
    assert loaded.out_of_pattern_threshold is None
    sets = unlike_every_pattern(training_set, 50)
    assert not loaded.out_of_pattern(sets).any()
    assert loaded.pattern_score(sets).shape == (50,)


@pytest.mark.parametrize("table", [{}, {"threshold": "low"}, {"threshold": float("nan")}])
def test_a_malformed_threshold_is_refused_at_load(saved, tmp_path, table):
    meta = json.loads((saved / METADATA_FILE).read_text())
    meta[OUT_OF_PATTERN] = table
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / METADATA_FILE).write_text(json.dumps(meta))
    (bad / "model.joblib").write_bytes((saved / "model.joblib").read_bytes())
    with pytest.raises(SymptomDxError, match=OUT_OF_PATTERN):
        SymptomClassifier.load(bad)
