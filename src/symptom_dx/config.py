"""The training configuration: every default of the pipeline, written once.

The pipeline's signature takes its defaults from ``DEFAULTS`` (KFP reads Python defaults at
compile time), and tests and the benchmark train with the same values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingConfig:
    """What a training run is made of, from the split to the gate.

    Attributes:
        algorithms: Comma-separated candidates: naive_bayes, logistic_regression, random_forest.
        nb_alpha: Additive smoothing of the multinomial naive Bayes candidate.
        lr_c: Inverse regularisation strength of the logistic regression candidate.
        rf_n_estimators: Number of trees of the random forest candidate.
        dropout_samples: Partial-symptom copies made of each training pattern (0 = none).
        test_fraction: Share of each disease's distinct patterns held out for evaluation.
        split_seed: Seed of the pattern split.
        seed: Seed of augmentation, training and the evaluation's vignettes.
        gate_metric: Metric that picks the best candidate and gates promotion.
        min_improvement: How much the gate metric must beat the champion's by to promote.
        vignettes_per_pattern: Random k-symptom subsets drawn from each held-out pattern.
    """

    algorithms: str = "naive_bayes,logistic_regression,random_forest"
    nb_alpha: float = 0.1
    lr_c: float = 10.0
    rf_n_estimators: int = 100
    dropout_samples: int = 30
    test_fraction: float = 0.2
    split_seed: int = 0
    seed: int = 0
    gate_metric: str = "k3_top1"
    min_improvement: float = 0.0
    vignettes_per_pattern: int = 20

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULTS = TrainingConfig()
