"""The compiled pipeline parses with the protos of the Kubeflow Pipelines backend terraform/
installs (kfp_version): the pipeline spec (kfp-pipeline-spec) and its Kubernetes platform
config (kfp-kubernetes's KubernetesExecutorConfig), at that release, strictly - a field the
backend does not know fails, as it would at upload."""

import json
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest
import yaml
from testkit import REPO, cluster_setting

from pipelines.compile import PACKAGE

# uv makes a venv of the backend's protos (from the package registry, the first time)
pytestmark = pytest.mark.tools

PARSE = """
import importlib.util, json, sys, sysconfig
from pathlib import Path
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

# the generated module alone: kfp.kubernetes' package imports the SDK, which is not here
path = Path(sysconfig.get_paths()["purelib"], "kfp/kubernetes/kubernetes_executor_config_pb2.py")
spec = importlib.util.spec_from_file_location("kubernetes_executor_config_pb2", path)
kubernetes_executor_config_pb2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kubernetes_executor_config_pb2)

ir, platform = json.load(sys.stdin)
json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec())
parsed = json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
for name, executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
    json_format.ParseDict(executor, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
print("ok", len(ir["deploymentSpec"]["executors"]))
"""


def backend_version() -> str:
    """terraform's kfp_version (the environment's default and the module's agree)."""
    found = set()
    for root in ("envs/dev", "modules/platform"):
        with (REPO / "terraform" / root / "variables.tf").open() as handle:
            blocks = hcl2.load(handle)["variable"]
        found |= {b['"kfp_version"']["default"].strip('"') for b in blocks if '"kfp_version"' in b}
    [version] = found
    return version


@pytest.fixture(scope="module")
def protos_venv():
    """A venv with the backend release's proto packages (and nothing of the SDK's)."""
    version = backend_version()
    [cache] = cluster_setting("TOOLS_DIR")  # the project's cache folder
    venv = Path(cache) / f"kfp-protos-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(venv)], check=True)
        pins = [  # their dependencies, at the versions the SDK runs with
            line.strip()
            for line in (REPO / "requirements.lock").read_text().splitlines()
            if line.startswith(("protobuf==", "googleapis-common-protos=="))
        ]
        packages = [f"kfp-pipeline-spec=={version}", f"kfp-kubernetes=={version}", *pins]
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), "--no-deps", *packages],
            check=True,
        )
    return python, version


def test_ir_parses_with_the_pinned_backends_protos(protos_venv):
    python, version = protos_venv
    spec, platform = list(yaml.safe_load_all(PACKAGE.read_text()))
    out = subprocess.run(
        [str(python), "-c", PARSE],
        input=json.dumps([spec, platform]),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"KFP {version}'s protos refuse the IR:\n{out.stderr[-2000:]}"
    assert out.stdout.split() == ["ok", str(len(spec["deploymentSpec"]["executors"]))]
    assert sys.version_info[:2] == (3, 11)
