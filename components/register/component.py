"""register: store the model once, version it in MLflow, gate the champion."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    test_set: Input[Dataset],
    evaluation: Input[Artifact],
    knowledge: Input[Artifact],
    min_improvement: float,
) -> NamedTuple(
    "Outputs", [("version", str), ("promoted", bool), ("storage_uri", str), ("verdict", str)]
):
    """Registers the model and moves the champion alias only if it wins.

    S3 and MLflow settings come from the environment (AWS_*, MLFLOW_TRACKING_URI, MLflow's
    credentials); in the cluster they are attached from Kubernetes Secrets.

    Args:
        model: The chosen model from evaluate.
        test_set: The held-out patterns (the champion is re-scored on the same vignettes).
        evaluation: All candidates' metrics and how they were scored, from evaluate.
        knowledge: The UI's knowledge tables from ingest, logged with the run.
        min_improvement: How much the gate metric must beat the champion's by to promote.

    Returns:
        The registry version, whether it became champion, its s3:// folder, the verdict.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from symptom_dx.settings import MlflowSettings, S3Settings
    from symptom_dx.steps import register, run_step

    result = run_step(
        "register",
        register,
        Path(model.path),
        Path(test_set.path),
        json.loads(Path(evaluation.path).read_text()),
        S3Settings(),
        MlflowSettings(),
        min_improvement,
        Path(knowledge.path),
    )
    print(f"register: version {result.version}: {result.verdict.reason}", flush=True)
    outputs = namedtuple("Outputs", ["version", "promoted", "storage_uri", "verdict"])
    return outputs(
        result.version, result.verdict.promoted, result.storage_uri, result.verdict.reason
    )
