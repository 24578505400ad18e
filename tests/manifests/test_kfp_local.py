"""The local cluster's Kubeflow Pipelines component names exactly the images the cluster build
makes (scripts/cluster/lib.sh defines them once)."""

import yaml
from testkit import REPO, cluster_setting

LOCAL = REPO / "scripts" / "cluster" / "kfp" / "local" / "kustomization.yaml"
VARIABLES = (
    "KFP_API_SERVER_IMAGE",
    "KFP_PERSISTENCEAGENT_IMAGE",
    "KFP_SCHEDULEDWORKFLOW_IMAGE",
    "KFP_DRIVER_IMAGE",
    "KFP_LAUNCHER_IMAGE",
    "ARGO_CONTROLLER_IMAGE",
    "ARGOEXEC_IMAGE",
    "MINIO_IMAGE",
)


def test_local_component_names_the_images_lib_sh_builds():
    text = LOCAL.read_text()
    component = yaml.safe_load(text)
    rewritten = {f"{i['newName']}:{i['newTag']}" for i in component["images"]}
    for variable, image in zip(VARIABLES, cluster_setting(*VARIABLES), strict=True):
        # an image of the images: list, or one the API server and Argo are told (args, env)
        assert image in rewritten or f'"{image}"' in text or f" {image}\n" in text, variable
