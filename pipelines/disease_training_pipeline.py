"""The training pipeline: ingest -> split -> train -> evaluate -> register -> deploy.

Compile with `make compile`; the IR YAML beside this file is what the Kubeflow dashboard
uploads, and a test fails if it differs from a fresh compile.
"""

from kfp import dsl, kubernetes

from components.deploy.component import deploy_model
from components.evaluate.component import evaluate_candidates
from components.ingest.component import ingest_dataset
from components.register.component import register_model
from components.split.component import split_dataset
from components.train.component import train_candidates
from symptom_dx.config import DEFAULTS
from symptom_dx.settings import S3_SECRET_KEYS

PIPELINE_NAME = "disease-training"
# In the cluster: the Secret terraform/ writes (MinIO's keys; with Pod Identity on AWS S3 the
# same keys, empty, as KFP 2.14 cannot mark a Secret optional) and a ConfigMap with the bucket
# and MLflow (manifests/kubeflow/). Locally kfp.local ignores both and the components read the
# same variables from `make run`'s environment.
S3_SECRET = "model-store-credentials"
# MLflow's basic-auth user for the steps that write to the registry (terraform/ writes it).
MLFLOW_SECRET = "mlflow-credentials"
CONFIG_MAP = "symptom-dx-config"


def _attach_settings(task: dsl.PipelineTask, mlflow: bool) -> None:
    kubernetes.use_secret_as_env(
        task,
        secret_name=S3_SECRET,
        secret_key_to_env={key: key for key in S3_SECRET_KEYS},
    )
    keys = {"SYMPTOM_DX_BUCKET": "SYMPTOM_DX_BUCKET", "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION"}
    if mlflow:
        keys["MLFLOW_TRACKING_URI"] = "MLFLOW_TRACKING_URI"
        kubernetes.use_secret_as_env(
            task,
            secret_name=MLFLOW_SECRET,
            secret_key_to_env={
                "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
            },
        )
    kubernetes.use_config_map_as_env(task, config_map_name=CONFIG_MAP, config_map_key_to_env=keys)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Symptom-based disease classifier: validate data, split by pattern, train "
    "candidates with symptom dropout, evaluate on held-out patterns, register and gate the "
    "champion.",
)
def disease_training_pipeline(
    data_source: str,
    data_sha256: str = "",
    knowledge_source: str = "",
    algorithms: str = DEFAULTS.algorithms,
    # Each candidate's hyperparameters, as the table symptom_dx.candidates lists them: KFP reads
    # a pipeline's parameters from its signature (tests/pipeline/test_compile.py compares).
    nb_alpha: float = DEFAULTS.nb_alpha,
    lr_c: float = DEFAULTS.lr_c,
    rf_n_estimators: int = DEFAULTS.rf_n_estimators,
    dropout_samples: int = DEFAULTS.dropout_samples,
    test_fraction: float = DEFAULTS.test_fraction,
    split_seed: int = DEFAULTS.split_seed,
    seed: int = DEFAULTS.seed,
    gate_metric: str = DEFAULTS.gate_metric,
    min_improvement: float = DEFAULTS.min_improvement,
    vignettes_per_pattern: int = DEFAULTS.vignettes_per_pattern,
    deploy: bool = True,
) -> None:
    ingest = ingest_dataset(
        source=data_source, sha256=data_sha256, knowledge_source=knowledge_source
    )
    ingest.set_caching_options(False)
    _attach_settings(ingest, mlflow=False)

    split = split_dataset(
        dataset=ingest.outputs["dataset"], test_fraction=test_fraction, split_seed=split_seed
    )
    train = train_candidates(
        train_set=split.outputs["train_set"],
        algorithms=algorithms,
        nb_alpha=nb_alpha,
        lr_c=lr_c,
        rf_n_estimators=rf_n_estimators,
        dropout_samples=dropout_samples,
        seed=seed,
    )
    evaluate = evaluate_candidates(
        gate_metric=gate_metric,
        vignettes_per_pattern=vignettes_per_pattern,
        seed=seed,
        test_set=split.outputs["test_set"],
        candidates=train.outputs["candidates"],
    )
    register = register_model(
        model=evaluate.outputs["model"],
        test_set=split.outputs["test_set"],
        evaluation=evaluate.outputs["evaluation"],
        knowledge=ingest.outputs["knowledge"],
        min_improvement=min_improvement,
    )
    # Registration has side effects (registry, alias): never reuse a cached result.
    register.set_caching_options(False)
    _attach_settings(register, mlflow=True)
    # Requests what a step needs to start, limits what it may burst to: a request of 2 CPUs
    # (the default when only limits are set) would fit no 2-core node beside the platform.
    for task in (split, train, evaluate, register):
        task.set_cpu_request("500m").set_cpu_limit("2")
        task.set_memory_request("1G").set_memory_limit("2G")

    # A new champion goes to the cluster at once, verified live (operations.deploy); the step
    # itself skips a version the gate did not promote, and `make run` (deploy=False), which
    # serves locally. (Not a dsl.If on `promoted`: kfp.local cannot resolve a named output of
    # an upstream task in a condition.)
    rollout = deploy_model(
        version=register.outputs["version"], promoted=register.outputs["promoted"], enabled=deploy
    )
    rollout.set_caching_options(False)
    _attach_settings(rollout, mlflow=True)
