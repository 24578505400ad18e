"""The training pipeline: ingest -> train -> evaluate -> register.

Compile with `make compile`; the IR YAML beside this file is what the Kubeflow dashboard
uploads, and a test fails if it differs from a fresh compile.
"""

from kfp import dsl, kubernetes

from components.evaluate.component import evaluate_candidates
from components.ingest.component import ingest_dataset
from components.register.component import register_model
from components.train.component import train_candidates

PIPELINE_NAME = "disease-training"
# In the cluster: the Secret terraform/ writes for MinIO (absent with Pod Identity on AWS S3,
# hence optional) and a ConfigMap with the bucket and MLflow (manifests/kubeflow/). Locally
# kfp.local ignores both and the components read the same variables from `make run`'s
# environment.
S3_SECRET = "model-store-credentials"
CONFIG_MAP = "symptom-dx-config"


def _attach_settings(task: dsl.PipelineTask, mlflow: bool) -> None:
    kubernetes.use_secret_as_env(
        task,
        secret_name=S3_SECRET,
        secret_key_to_env={
            "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
        },
        optional=True,
    )
    keys = {"SYMPTOM_DX_BUCKET": "SYMPTOM_DX_BUCKET", "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION"}
    if mlflow:
        keys["MLFLOW_TRACKING_URI"] = "MLFLOW_TRACKING_URI"
    kubernetes.use_config_map_as_env(task, config_map_name=CONFIG_MAP, config_map_key_to_env=keys)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Symptom-based disease classifier: validate data, train candidates with "
    "symptom dropout, evaluate on held-out patterns, register and gate the champion.",
)
def disease_training_pipeline(
    data_source: str,
    data_sha256: str = "",
    algorithms: str = "naive_bayes,logistic_regression,random_forest",
    nb_alpha: float = 0.1,
    lr_c: float = 10.0,
    rf_n_estimators: int = 100,
    dropout_samples: int = 30,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
    gate_metric: str = "k3_top1",
    min_improvement: float = 0.0,
    vignettes_per_pattern: int = 20,
) -> None:
    ingest = ingest_dataset(source=data_source, sha256=data_sha256)
    ingest.set_caching_options(False)
    _attach_settings(ingest, mlflow=False)

    train = train_candidates(
        dataset=ingest.outputs["dataset"],
        algorithms=algorithms,
        nb_alpha=nb_alpha,
        lr_c=lr_c,
        rf_n_estimators=rf_n_estimators,
        dropout_samples=dropout_samples,
        test_fraction=test_fraction,
        split_seed=split_seed,
        seed=seed,
    )
    evaluate = evaluate_candidates(
        dataset=ingest.outputs["dataset"],
        candidates=train.outputs["candidates"],
        test_fraction=test_fraction,
        split_seed=split_seed,
        gate_metric=gate_metric,
        vignettes_per_pattern=vignettes_per_pattern,
    )
    register = register_model(
        model=evaluate.outputs["model"],
        dataset=ingest.outputs["dataset"],
        evaluation=evaluate.outputs["evaluation"],
        min_improvement=min_improvement,
        vignettes_per_pattern=vignettes_per_pattern,
    )
    # Registration has side effects (registry, alias): never reuse a cached result.
    register.set_caching_options(False)
    _attach_settings(register, mlflow=True)
    for task in (train, evaluate, register):
        task.set_cpu_limit("2").set_memory_limit("2G")
