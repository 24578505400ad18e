import numpy as np
import pytest

from symptom_dx.candidates import ALGORITHMS
from symptom_dx.errors import SymptomDxError
from symptom_dx.features import decode, encode, symptom_dropout
from symptom_dx.model import SymptomClassifier
from symptom_dx.vocabulary import vocabulary


@pytest.fixture(scope="module")
def small(training_set):
    d = training_set.distinct()
    return d.X, d.y


def test_encode_decode_roundtrip():
    X = encode([["itching", "skin_rash"], ["fatigue"]])
    assert X.shape == (2, 132)
    assert decode(X[0]) == ["itching", "skin_rash"]


def test_symptom_dropout_keeps_only_present_symptoms(small):
    X, y = small
    Xa, ya = symptom_dropout(X[:5], y[:5], samples_per_row=10, seed=1)
    assert len(Xa) == 5 + 50
    for row, label in zip(Xa[5:], ya[5:], strict=True):
        source = X[:5][y[:5] == label]
        assert row.sum() >= 1
        assert any(((row == 1) <= (s == 1)).all() for s in source)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fast_path_matches_predict_proba(small, algorithm):
    X, y = small
    model = SymptomClassifier.train(X, y, algorithm, {"n_estimators": 10}, dropout_samples=3)
    reference = model.estimator.predict_proba(X[:20].astype(np.float32))[:, model._order]
    np.testing.assert_allclose(model.predict_proba(X[:20]), reference, atol=1e-6)
    positions = [np.flatnonzero(r).tolist() for r in X[:20]]
    np.testing.assert_allclose(model.predict_proba_positions(positions), reference, atol=1e-6)


def test_rank_explains_and_asks(small):
    X, y = small
    model = SymptomClassifier.train(X, y, "naive_bayes", {"alpha": 0.1}, dropout_samples=10)
    v = vocabulary()
    given = [v.position(s) for s in ("itching", "skin_rash", "nodal_skin_eruptions")]
    (d,) = model.rank([given], top_k=5)
    assert d.diseases[0] == "Fungal infection"
    assert len(d.diseases) == len(d.probabilities) == len(d.supporting) == len(d.missing) == 5
    assert d.probabilities == sorted(d.probabilities, reverse=True)
    assert set(d.supporting[0]) == {"itching", "skin_rash", "nodal_skin_eruptions"}
    assert "dischromic_patches" in d.missing[0]
    assert d.next_question not in {"itching", "skin_rash", "nodal_skin_eruptions"}
    # denying the suggested symptom changes the answer and the next question
    (after_no,) = model.rank([given], top_k=5, absent=[[v.position(d.next_question)]])
    assert after_no.next_question != d.next_question


def test_save_load_roundtrip(tmp_path, small):
    X, y = small
    model = SymptomClassifier.train(X, y, "logistic_regression", {"C": 1.0}, dropout_samples=2)
    path = model.save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["metadata.json", "model.joblib"]
    loaded = SymptomClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X[:5]), model.predict_proba(X[:5]))
    assert loaded.describe()["versions"]["scikit-learn"]
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_load_errors(tmp_path, small):
    with pytest.raises(SymptomDxError, match=r"has no model\.joblib"):
        SymptomClassifier.load(tmp_path)
    X, y = small
    path = SymptomClassifier.train(X, y, "naive_bayes", {}).save(tmp_path / "m")
    (path / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(SymptomDxError, match=r"cannot load .*model\.joblib"):
        SymptomClassifier.load(path)
    (path / "metadata.json").write_text("{broken")
    with pytest.raises(SymptomDxError, match=r"cannot read .*metadata\.json"):
        SymptomClassifier.load(path)


def test_unknown_algorithm(small):
    X, y = small
    with pytest.raises(SymptomDxError, match="unknown algorithm 'svm'"):
        SymptomClassifier.train(X, y, "svm")


def test_training_reference_counts_distinct_patterns(small, tmp_path):
    X, y = small
    doubled_X, doubled_y = np.concatenate([X, X]), np.concatenate([y, y])
    model = SymptomClassifier.train(doubled_X, doubled_y, "naive_bayes", {}, dropout_samples=5)
    reference = model.reference
    assert reference.patterns == len(X)  # duplicates and dropout copies do not count
    assert set(reference.symptom_share) == set(vocabulary().ids)
    assert reference.disease_share.keys() == set(model.classes)
    assert sum(reference.disease_share.values()) == pytest.approx(1.0, abs=1e-4)
    itching = vocabulary().position("itching")
    assert reference.symptom_share["itching"] == pytest.approx((X[:, itching] > 0).mean(), abs=1e-6)
    loaded = SymptomClassifier.load(model.save(tmp_path / "m"))
    assert loaded.reference == reference


def test_load_checks_the_model_file_before_unpickling_it(tmp_path, small):
    from symptom_dx.model import model_sha256

    X, y = small
    path = SymptomClassifier.train(X, y, "naive_bayes", {}).save(tmp_path / "m")
    digest = model_sha256(path)
    assert SymptomClassifier.load(path, sha256=digest.upper()).classes
    (path / "model.joblib").write_bytes(b"not the registered pickle")
    with pytest.raises(SymptomDxError, match=r"expected .*refusing to unpickle") as info:
        SymptomClassifier.load(path, sha256=digest)
    assert "\n" not in str(info.value)
    with pytest.raises(SymptomDxError, match="64 hexadecimal digits"):
        SymptomClassifier.load(path, sha256="abc")
