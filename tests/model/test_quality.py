"""Behavioural and quality tests on models trained the way the pipeline trains them."""

import numpy as np
import pytest

from symptom_dx.evaluation import evaluate, vignettes
from symptom_dx.model import SymptomClassifier
from symptom_dx.vocabulary import vocabulary


@pytest.fixture(scope="module")
def trained(default_candidate):
    return default_candidate


@pytest.fixture(scope="module")
def split(trained):
    return trained[1]


@pytest.fixture(scope="module")
def champion_candidate(trained):
    return trained[0]


def test_split_holds_out_whole_patterns(split, training_set):
    train = {r.tobytes() for r in split.train.X}
    test = {r.tobytes() for r in split.test.X}
    assert not train & test
    assert len(train) + len(test) == 304
    assert set(split.test.y) == set(training_set.y)  # every disease is tested


def test_vignettes_draw_k_symptoms_from_the_pattern(split):
    X, _y = vignettes(split.test, k=3, per_pattern=5, seed=0)
    assert len(X) == 5 * len(split.test)
    assert (X.sum(axis=1) == 3).all()


def test_partial_symptom_quality_meets_the_bar(champion_candidate, split):
    """k = 3 present symptoms on held-out patterns: top-3 >= 0.97 and top-1 >= 0.88."""
    results = evaluate(champion_candidate, split.test)
    assert results["k3"]["top3"] >= 0.97
    assert results["k3"]["top1"] >= 0.88
    assert results["k3"]["ece"] < 0.05
    assert results["full"]["top1"] >= 0.98


def test_symptom_dropout_is_what_makes_partial_input_work(split):
    """The seed's RandomForest on full rows only: far worse on 3-symptom vignettes."""
    seed_model = SymptomClassifier.train(split.train.X, split.train.y, "random_forest", {})
    assert evaluate(seed_model, split.test)["k3"]["top1"] < 0.8


def test_more_typical_symptoms_raise_confidence(champion_candidate):
    """Directional: adding a typical symptom of the top disease makes it more likely."""
    v = vocabulary()
    given = [v.position(s) for s in ("chills", "vomiting")]
    (before,) = champion_candidate.rank([given], top_k=3)
    extra = v.position(before.missing[0][0])
    (after,) = champion_candidate.rank([[*given, extra]], top_k=3)
    assert after.diseases[0] == before.diseases[0]
    assert after.probabilities[0] > before.probabilities[0]


def test_order_of_symptoms_does_not_matter(champion_candidate):
    v = vocabulary()
    a = [v.position(s) for s in ("cough", "high_fever", "breathlessness")]
    p1 = champion_candidate.predict_proba_positions([a])
    p2 = champion_candidate.predict_proba_positions([list(reversed(a))])
    np.testing.assert_allclose(p1, p2)
