"""train: fit every candidate on the training patterns."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_candidates(
    train_set: Input[Dataset],
    candidates: Output[Model],
    algorithms: str,
    nb_alpha: float,
    lr_c: float,
    rf_n_estimators: int,
    dropout_samples: int,
    seed: int,
) -> None:
    """Trains the candidate models.

    The pipeline gives every parameter (its defaults are symptom_dx.config.DEFAULTS); the
    hyperparameters are those of the candidate table, symptom_dx.candidates.

    Args:
        train_set: The training patterns from split.
        candidates: A folder with one model folder (model.joblib, metadata.json) per candidate.
        algorithms: Comma-separated candidates: naive_bayes, logistic_regression, random_forest.
        nb_alpha: Additive smoothing of the multinomial naive Bayes candidate.
        lr_c: Inverse regularisation strength of the logistic regression candidate.
        rf_n_estimators: Number of trees of the random forest candidate.
        dropout_samples: Partial-symptom copies made of each training pattern (0 = none).
        seed: Seed of augmentation and training.
    """
    from pathlib import Path

    from symptom_dx.steps import hyperparameters, run_step, train

    names = run_step(
        "train",
        lambda: train(
            Path(train_set.path),
            Path(candidates.path),
            algorithms,
            hyperparameters(nb_alpha=nb_alpha, lr_c=lr_c, rf_n_estimators=rf_n_estimators),
            dropout_samples,
            seed,
            dict(train_set.metadata),
        ),
    )
    candidates.metadata["candidates"] = names
