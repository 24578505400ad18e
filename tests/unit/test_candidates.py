"""The candidate table (symptom_dx.candidates) and what derives from it: the configuration's
hyperparameter fields, their checks and the estimators. (The pipeline's and the train
component's signatures: tests/pipeline/test_compile.py.)"""

import dataclasses

import pytest

from symptom_dx.candidates import ALGORITHMS, CANDIDATES, HYPERPARAMETERS
from symptom_dx.config import DEFAULTS, TrainingConfig
from symptom_dx.errors import SymptomDxError
from symptom_dx.model import make_estimator
from symptom_dx.steps import hyperparameters


def test_the_table_is_consistent():
    names = [h.name for c in CANDIDATES.values() for h in c.hyperparameters]
    assert len(names) == len(set(names)), "a pipeline parameter name is used twice"
    for candidate in CANDIDATES.values():
        keywords = [h.keyword for h in candidate.hyperparameters]
        assert len(keywords) == len(set(keywords)), f"{candidate.name} sets a keyword twice"
        # every keyword is one the estimator takes, and the defaults build it
        accepted = make_estimator(candidate.name, {}, seed=0).get_params()
        assert set(keywords) <= set(accepted), candidate.name
        for h in candidate.hyperparameters:
            assert type(h.default) is h.kind, h.name
            assert h.description.endswith(".") and "\n" not in h.description, h.name


def test_the_defaults_pass_their_checks():
    hyperparameters(**{name: h.default for name, h in HYPERPARAMETERS.items()})


def test_the_configuration_derives_from_the_table():
    fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
    for name, h in HYPERPARAMETERS.items():
        assert (fields[name].type, fields[name].default) == (h.kind, h.default)
    assert DEFAULTS.hyperparameter_values() == {n: h.default for n, h in HYPERPARAMETERS.items()}
    assert DEFAULTS.algorithms == ",".join(ALGORITHMS)
    assert TrainingConfig(nb_alpha=0.5).nb_alpha == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.nb_alpha = 1.0


def test_hyperparameters_map_pipeline_parameters_to_estimator_keywords():
    given = {**DEFAULTS.hyperparameter_values(), "nb_alpha": 0.2, "lr_c": 3.0, "rf_n_estimators": 7}
    mapped = hyperparameters(**given)
    assert list(mapped) == list(ALGORITHMS)
    assert {a: mapped[a] for a in ("naive_bayes", "logistic_regression", "random_forest")} == {
        "naive_bayes": {"alpha": 0.2},
        "logistic_regression": {"C": 3.0},
        "random_forest": {"n_estimators": 7},
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nb_alpha": -0.5}, "nb_alpha = -0.5 must be >= 0.0"),
        ({"lr_c": 0.0}, "lr_c = 0.0 must be > 0.0"),
        ({"rf_n_estimators": 0}, "rf_n_estimators = 0 must be >= 1"),
        ({"nb_alpha": None}, "nb_alpha not given"),  # None: left out
        ({"max_depth": 3}, "max_depth is no candidate's hyperparameter"),
    ],
)
def test_hyperparameters_say_which_one_is_bad(values, message):
    given = {**DEFAULTS.hyperparameter_values(), **values}
    given = {k: v for k, v in given.items() if v is not None}
    with pytest.raises(SymptomDxError) as error:
        hyperparameters(**given)
    assert str(error.value) == f"bad pipeline parameter(s): {message}"


def test_estimators_are_the_ones_trained_before_the_table():
    """The estimators, their defaults and seeds as make_estimator wrote them out before."""
    cases = {
        "naive_bayes": ("MultinomialNB", {"alpha": 0.1}),
        "logistic_regression": (
            "LogisticRegression",
            {"C": 10.0, "max_iter": 3000, "random_state": 7},
        ),
        "random_forest": (
            "RandomForestClassifier",
            {"n_estimators": 100, "max_depth": None, "random_state": 7, "n_jobs": 1},
        ),
    }
    for algorithm, (cls, expected) in cases.items():
        estimator = make_estimator(algorithm, {}, seed=7)
        assert type(estimator).__name__ == cls
        assert {k: estimator.get_params()[k] for k in expected} == expected
    # given keywords are coerced to the hyperparameter's type; other candidates' are ignored
    forest = make_estimator("random_forest", {"n_estimators": 10.0, "alpha": 3}, seed=0)
    assert forest.get_params()["n_estimators"] == 10
    assert type(forest.get_params()["n_estimators"]) is int
    defaults = hyperparameters(**DEFAULTS.hyperparameter_values())
    for algorithm in ALGORITHMS:
        built = make_estimator(algorithm, defaults[algorithm], seed=7).get_params()
        assert built == make_estimator(algorithm, {}, seed=7).get_params()
