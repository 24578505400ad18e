"""train: fit every candidate on the training side of the pattern split."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_candidates(
    dataset: Input[Dataset],
    candidates: Output[Model],
    algorithms: str = "naive_bayes,logistic_regression,random_forest",
    nb_alpha: float = 0.1,
    lr_c: float = 10.0,
    rf_n_estimators: int = 100,
    dropout_samples: int = 30,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
) -> None:
    """Trains the candidate models.

    Args:
        dataset: The validated dataset from ingest.
        candidates: A folder with one model folder (model.joblib, metadata.json) per candidate.
        algorithms: Comma-separated candidates: naive_bayes, logistic_regression, random_forest.
        nb_alpha: Additive smoothing of the multinomial naive Bayes candidate.
        lr_c: Inverse regularisation strength of the logistic regression candidate.
        rf_n_estimators: Number of trees of the random forest candidate.
        dropout_samples: Partial-symptom copies made of each training pattern (0 = none).
        test_fraction: Share of each disease's distinct patterns held out for evaluation.
        split_seed: Seed of the pattern split (evaluate must use the same).
        seed: Seed of augmentation and training.
    """
    from pathlib import Path

    from symptom_dx.steps import hyperparameters, run_step, train

    names = run_step(
        "train",
        lambda: train(
            Path(dataset.path),
            Path(candidates.path),
            algorithms,
            hyperparameters(nb_alpha, lr_c, rf_n_estimators),
            dropout_samples,
            test_fraction,
            split_seed,
            seed,
        ),
    )
    candidates.metadata["candidates"] = names
