"""The model candidates: one table of what ``train`` can fit, and with which hyperparameters.

Each candidate names its scikit-learn estimator (a factory) and its hyperparameters: the
pipeline parameter (``nb_alpha``), its type, default and valid range, the estimator keyword it
sets (``alpha``) and a one-line description. The training configuration's hyperparameter fields
and defaults (``symptom_dx.config``), their checks (``symptom_dx.steps.hyperparameters``) and
the estimators (``symptom_dx.model.make_estimator``) derive from it.

KFP reads a pipeline's and a component's parameters from their Python signatures, so a new
candidate's hyperparameters are also written, by name, in the pipeline's signature
(pipelines/disease_training_pipeline.py) and the train component's
(components/train/component.py); tests/pipeline/test_compile.py checks both against this table
and says what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hyperparameter:
    """One pipeline parameter of a candidate, and the estimator keyword it sets."""

    name: str  # the pipeline parameter, unique over all candidates (e.g. nb_alpha)
    keyword: str  # the estimator's keyword argument it sets (e.g. alpha)
    kind: type[int] | type[float]
    default: int | float
    minimum: int | float
    description: str  # one line: the parameter's description in the compiled pipeline
    exclusive_minimum: bool = False  # the value must be above ``minimum``, not at it
    maximum: int | float = math.inf


@dataclass(frozen=True)
class Candidate:
    """A model ``train`` can fit: its estimator factory and its hyperparameters."""

    name: str
    # (keyword arguments, one per hyperparameter, seed) -> a fresh, unfitted estimator
    factory: Callable[[dict[str, Any], int], Any]
    hyperparameters: tuple[Hyperparameter, ...]

    def estimator(self, params: dict[str, Any], seed: int) -> Any:
        """The estimator with ``params`` (by estimator keyword: the defaults fill any not given,
        and keywords this candidate does not take are ignored)."""
        keywords = {
            h.keyword: h.kind(params.get(h.keyword, h.default)) for h in self.hyperparameters
        }
        return self.factory(keywords, seed)


# scikit-learn is imported where it is used: the steps that neither train nor score (ingest,
# split, deploy) start ~1.5 s faster without it.
def _naive_bayes(keywords: dict[str, Any], seed: int) -> Any:
    from sklearn.naive_bayes import MultinomialNB

    return MultinomialNB(**keywords)  # deterministic: no seed to take


def _logistic_regression(keywords: dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**keywords, max_iter=3000, random_state=seed)


def _random_forest(keywords: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**keywords, random_state=seed, n_jobs=1)


# In this order, the pipeline's default ``algorithms`` (all of them).
_TABLE = (
    Candidate(
        name="naive_bayes",
        factory=_naive_bayes,
        hyperparameters=(
            Hyperparameter(
                name="nb_alpha",
                keyword="alpha",
                kind=float,
                default=0.1,
                minimum=0.0,
                description="Additive smoothing of the multinomial naive Bayes candidate.",
            ),
        ),
    ),
    Candidate(
        name="logistic_regression",
        factory=_logistic_regression,
        hyperparameters=(
            Hyperparameter(
                name="lr_c",
                keyword="C",
                kind=float,
                default=10.0,
                minimum=0.0,
                exclusive_minimum=True,
                description="Inverse regularisation strength of the logistic regression candidate.",
            ),
        ),
    ),
    Candidate(
        name="random_forest",
        factory=_random_forest,
        hyperparameters=(
            Hyperparameter(
                name="rf_n_estimators",
                keyword="n_estimators",
                kind=int,
                default=100,
                minimum=1,
                description="Number of trees of the random forest candidate.",
            ),
        ),
    ),
)
CANDIDATES: dict[str, Candidate] = {c.name: c for c in _TABLE}
ALGORITHMS = tuple(CANDIDATES)
# The one candidate tests and benchmarks train when they need a model like the pipeline's.
DEFAULT_CANDIDATE = "naive_bayes"
# Every candidate's hyperparameters by pipeline parameter name, in the table's order.
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    h.name: h for c in CANDIDATES.values() for h in c.hyperparameters
}
