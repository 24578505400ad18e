"""evaluate: score candidates on held-out patterns and partial-symptom vignettes; pick one."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_candidates(
    test_set: Input[Dataset],
    candidates: Input[Model],
    model: Output[Model],
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
    gate_metric: str,
    vignettes_per_pattern: int,
    seed: int,
) -> NamedTuple("Outputs", [("best", str), ("gate_score", float)]):
    """Evaluates every candidate and keeps the best.

    Args:
        test_set: The held-out patterns from split.
        candidates: The trained candidates from train.
        model: The best candidate (model.joblib, metadata.json with its metrics).
        metrics: The best candidate's metrics, shown by the Kubeflow dashboard.
        confusion_matrix: The best candidate's confusion matrix on 3-symptom vignettes.
        evaluation: All candidates' metrics and how they were scored, as JSON (for register).
        gate_metric: Metric that picks the best candidate and gates promotion, e.g. k3_top1.
        vignettes_per_pattern: Random k-symptom subsets drawn from each held-out pattern.
        seed: Seed of the vignettes.

    Returns:
        The chosen algorithm and its gate metric.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from symptom_dx.steps import evaluate_candidates as evaluate
    from symptom_dx.steps import run_step

    result = run_step(
        "evaluate",
        evaluate,
        Path(test_set.path),
        Path(candidates.path),
        Path(model.path),
        gate_metric,
        vignettes_per_pattern,
        seed,
    )
    for name, value in result["metrics"].items():
        metrics.log_metric(name, round(value, 6))
    confusion = result.pop("confusion_k3")
    confusion_matrix.log_confusion_matrix(confusion["labels"], confusion["matrix"])
    Path(evaluation.path).write_text(json.dumps(result, indent=1, sort_keys=True))
    gate_score = result["metrics"][gate_metric]
    model.metadata.update({"algorithm": result["best"], gate_metric: gate_score})
    outputs = namedtuple("Outputs", ["best", "gate_score"])
    return outputs(result["best"], gate_score)
