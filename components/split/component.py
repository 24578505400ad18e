"""split: hold out a share of each disease's distinct patterns, once, for every later step."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def split_dataset(
    dataset: Input[Dataset],
    train_set: Output[Dataset],
    test_set: Output[Dataset],
    test_fraction: float,
    split_seed: int,
) -> None:
    """Splits the validated dataset by distinct symptom pattern.

    The pipeline gives every parameter (its defaults are symptom_dx.config.DEFAULTS).

    Args:
        dataset: The validated dataset from ingest.
        train_set: The training patterns (canonical CSV, distinct rows).
        test_set: The held-out patterns: what evaluate scores and the gate re-scores on.
        test_fraction: Share of each disease's distinct patterns held out.
        split_seed: Seed of the split.
    """
    from pathlib import Path

    from symptom_dx.steps import run_step, split

    info = run_step(
        "split",
        split,
        Path(dataset.path),
        Path(train_set.path),
        Path(test_set.path),
        test_fraction,
        split_seed,
    )
    train_set.metadata.update(info)
    test_set.metadata.update(info)
