"""deploy: serve the new champion on the cluster, verified live, or leave the served one."""

from kfp import dsl

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(version: str, promoted: bool, enabled: bool) -> str:
    """Brings the registered version up as a candidate InferenceService, checks its smoke set
    live, then switches the served InferenceService to it (operations.deploy).

    MLflow's address and credentials come from the environment; the Kubernetes API from the
    pod's service account (RBAC: manifests/serving/deployer-rbac.yaml).

    Args:
        version: The registry version register made.
        promoted: Whether the gate made it the champion; if not, the served model stays.
        enabled: False to leave the cluster alone (the pipeline's ``deploy`` parameter).

    Returns:
        The storageUri now served ("" when nothing was deployed).
    """
    if not (promoted and enabled):
        why = "the gate kept the champion" if not promoted else "deploy=False"
        print(f"deploy: version {version} not deployed ({why})", flush=True)
        return ""
    from operations.deploy import deploy
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
