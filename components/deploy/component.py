"""deploy: serve the new champion on the cluster, verified live, or leave the served one."""

from kfp import dsl

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(version: str) -> str:
    """Brings the registered version up as a candidate InferenceService, checks its smoke set
    live, then switches the served InferenceService to it (symptom_dx.deploy).

    MLflow's address and credentials come from the environment; the Kubernetes API from the
    pod's service account (RBAC: manifests/serving/deployer-rbac.yaml).

    Args:
        version: The registry version register promoted.

    Returns:
        The storageUri now served.
    """
    from symptom_dx.deploy import deploy
    from symptom_dx.settings import DeploySettings, MlflowSettings
    from symptom_dx.steps import run_step

    outcome = run_step(
        "deploy",
        deploy,
        DeploySettings(),
        MlflowSettings(),
        version=version,
        say=lambda line: print(f"deploy: {line}", flush=True),
    )
    return outcome.release.storage_uri
