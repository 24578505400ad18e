"""Our images on EKS: ECR repositories for every image the platform runs from us, and
`make images` building them for the nodes' platform and logging in to ECR before pushing.

scripts/images.sh runs here in a copy of its folder with stand-ins for docker, aws and the
venv's python that record what they are asked: no engine, registry or AWS account is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_tfparse import TERRAFORM_DIR, dir_blocks, dir_locals, dir_resources, expr, unq

from pipelines.compile import image_targets

REPO_ROOT = TERRAFORM_DIR.parent
PLATFORM_DIR = TERRAFORM_DIR / "modules" / "platform"
ENV_DIR = TERRAFORM_DIR / "envs" / "dev"
ECR_REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/symptom-dx"


def project_version() -> str:
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "(.*)"', text, re.M).group(1)


# --- terraform: repositories, outputs --------------------------------------------------------


def test_a_repository_for_every_image_we_build() -> None:
    default = [unq(i) for i in dir_blocks(PLATFORM_DIR, "variable")["images"]["default"]]
    assert sorted(default) == sorted(image_targets())
    repository = dir_resources(PLATFORM_DIR)[("aws_ecr_repository", "images")]
    assert expr(repository["for_each"]) == "toset(var.images)"
    assert unq(repository["name"]) == "${var.cluster_name}/${each.key}"


def test_repositories_scan_are_immutable_encrypted_and_pruned() -> None:
    res = dir_resources(PLATFORM_DIR)
    repository = res[("aws_ecr_repository", "images")]
    assert repository["image_scanning_configuration"][0]["scan_on_push"] is True
    assert unq(repository["image_tag_mutability"]) == "IMMUTABLE"
    assert unq(repository["encryption_configuration"][0]["encryption_type"]) == "KMS"
    assert expr(repository["force_delete"]) == "var.ecr_force_delete"
    assert dir_blocks(ENV_DIR, "variable")["ecr_force_delete"]["default"] is False
    policy = res[("aws_ecr_lifecycle_policy", "images")]
    assert expr(policy["for_each"]) == "aws_ecr_repository.images"


def test_lifecycle_policy_is_valid_ecr_json(tmp_path) -> None:
    """Terraform itself evaluates the policy expression (no provider needed)."""
    policy = dir_resources(PLATFORM_DIR)[("aws_ecr_lifecycle_policy", "images")]["policy"]
    (tmp_path / "cli.tfrc").write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc")}
    out = subprocess.run(
        ["terraform", "console"],
        input=expr(policy) + "\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rules = json.loads(json.loads(out.stdout))["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    # ECR: a tagStatus "any" rule must have the highest rulePriority number
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert rules[-1]["selection"]["countType"] == "imageCountMoreThan"
    assert rules[-1]["selection"]["countNumber"] >= 10
    assert rules[0]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    assert all(r["action"] == {"type": "expire"} for r in rules)


def test_outputs_name_the_registry_and_repositories() -> None:
    registry = unq(dir_locals(PLATFORM_DIR)["image_registry"])
    assert expr(registry) == (
        'trimsuffix(aws_ecr_repository.images["serving"].repository_url, "/serving")'
    )
    module_outputs = dir_blocks(PLATFORM_DIR, "output")
    env_outputs = dir_blocks(ENV_DIR, "output")
    for name in ("image_registry", "image_repository_urls", "image_tag"):
        assert name in module_outputs and name in env_outputs, name
        assert expr(env_outputs[name]["value"]) == f"module.platform.{name}"


@pytest.mark.parametrize("directory", [PLATFORM_DIR, ENV_DIR], ids=["module", "env"])
def test_image_tag_defaults_to_the_project_version(directory: Path) -> None:
    assert unq(dir_blocks(directory, "variable")["image_tag"]["default"]) == project_version()
    if directory == ENV_DIR:
        call = dir_blocks(ENV_DIR, "module")["platform"]
        assert expr(call["image_tag"]) == "var.image_tag"
        assert expr(call["ecr_force_delete"]) == "var.ecr_force_delete"


def test_deploy_runbook_pushes_to_ecr_before_the_application() -> None:
    readme = (ENV_DIR / "README.md").read_text(encoding="utf-8")
    assert 'TF="terraform -chdir=terraform/envs/dev"' in readme
    push = readme.index("make images REGISTRY=$($TF output -raw image_registry)")
    assert "TAG=$($TF output -raw image_tag) PUSH=1" in readme[push : push + 200]
    assert push < readme.index("kubectl apply -k manifests/                # minio mode")


# --- scripts/images.sh ----------------------------------------------------------------------

FAKE_DOCKER = r"""#!/bin/bash
printf '%s\n' "docker $*" >>"$RECORD"
case "$1" in
  login) printf 'stdin=%s\n' "$(cat)" >>"$RECORD" ;;
  image)
    case "$*" in
      *Architecture*) echo "${FAKE_BUILT_PLATFORM:-linux/amd64}" ;;
      *Size*) echo 5000000 ;;
    esac ;;
esac
exit 0
"""
FAKE_AWS = r"""#!/bin/bash
printf '%s\n' "aws $*" >>"$RECORD"
echo fake-ecr-password
"""
# the venv's python: `-m pipelines.compile --list-images` prints refs under FAKE_REGISTRY
FAKE_PYTHON = r"""#!/bin/bash
printf '%s\n' "python $*" >>"$RECORD"
case "$*" in
  *--list-images*)
    for t in components serving ui storage-initializer; do
      echo "$t ${FAKE_REGISTRY}/$t:0.1.0"
    done ;;
esac
"""


@pytest.fixture
def images_sh(tmp_path):
    """scripts/images.sh in a copy of the repository layout, with recording stand-ins."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "scripts" / "images.sh", root / "scripts" / "images.sh")
    for helper in ("docker-engine.sh", "base-image.sh"):
        (root / "scripts" / helper).write_text("exit 0\n")
    bin_dir = tmp_path / "bin"
    (root / ".venv" / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    for path, text in (
        (bin_dir / "docker", FAKE_DOCKER),
        (bin_dir / "aws", FAKE_AWS),
        (root / ".venv" / "bin" / "python", FAKE_PYTHON),
    ):
        path.write_text(text)
        path.chmod(0o755)
    record = tmp_path / "record"

    def run(**env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        record.write_text("")
        base = {k: v for k, v in os.environ.items() if k not in ("REGISTRY", "TAG", "PUSH")}
        base.pop("IMAGE_PLATFORM", None)
        full = {**base, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record)}
        full.setdefault("FAKE_REGISTRY", "ghcr.io/symptom-dx")
        full.update(env)
        out = subprocess.run(
            ["bash", str(root / "scripts" / "images.sh")],
            capture_output=True,
            text=True,
            env=full,
            timeout=60,
        )
        return out, record.read_text().splitlines()

    return run


def builds(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("docker build ")]


def test_make_images_builds_for_amd64_by_default(images_sh) -> None:
    out, calls = images_sh(REGISTRY="ghcr.io/symptom-dx", TAG="0.1.0")
    assert out.returncode == 0, out.stderr
    # each image and its build stage (tagged, so the stage stays as cache when the images a
    # build replaced are removed: the labelled ones, and only those)
    assert len([c for c in builds(calls) if " -t symptom-dx-build-cache:" in c]) == 4
    assert len(builds(calls)) == 8
    assert all(" --platform linux/amd64 " in c for c in builds(calls)), builds(calls)
    assert all(" --label io.symptom-dx.project=symptom-dx " in c for c in builds(calls))
    assert calls[-1] == "docker image prune -f --filter label=io.symptom-dx.project=symptom-dx"
    assert "linux/amd64" in out.stdout


@pytest.mark.parametrize(
    ("env", "flag"),
    [
        ({"IMAGE_PLATFORM": "linux/arm64", "FAKE_BUILT_PLATFORM": "linux/arm64"}, "linux/arm64"),
        ({"IMAGE_PLATFORM": ""}, None),  # set and empty: the engine's own
        ({"REGISTRY": "", "TAG": ""}, None),  # make test: runs what it builds on this machine
    ],
    ids=["override", "empty", "make-test"],
)
def test_image_platform_can_be_overridden(images_sh, env, flag) -> None:
    out, calls = images_sh(**env)
    assert out.returncode == 0, out.stderr
    for call in builds(calls):
        if flag:
            assert f" --platform {flag} " in call, call
        else:
            assert "--platform" not in call, call


def test_an_image_of_another_platform_fails_the_build(images_sh) -> None:
    """The classic builder takes --platform but reuses a local base image of the host's
    architecture (checked with dockerd 20.10 here): images.sh must say so, not push it."""
    out, calls = images_sh(
        REGISTRY="ghcr.io/symptom-dx", TAG="0.1.0", PUSH="1", FAKE_BUILT_PLATFORM="linux/arm64"
    )
    assert out.returncode == 1
    assert "is linux/arm64, not linux/amd64" in out.stderr
    assert not [c for c in calls if c.startswith("docker push")]


def test_push_to_ecr_logs_in_first(images_sh) -> None:
    out, calls = images_sh(REGISTRY=ECR_REGISTRY, TAG="0.1.0", PUSH="1", FAKE_REGISTRY=ECR_REGISTRY)
    assert out.returncode == 0, out.stderr
    host = ECR_REGISTRY.split("/")[0]
    assert calls.count("aws ecr get-login-password --region eu-west-1") == 1
    login = calls.index(f"docker login --username AWS --password-stdin {host}")
    # aws and docker run as one pipe: their records may interleave
    assert "stdin=fake-ecr-password" in calls[login + 1 : login + 3]
    pushes = [i for i, c in enumerate(calls) if c.startswith("docker push ")]
    assert len(pushes) == 4 and login < min(pushes)
    assert calls[pushes[0]] == f"docker push -q {ECR_REGISTRY}/components:0.1.0"
    # the references are rewritten first (python -m pipelines.compile --registry ... --tag ...)
    assert f"python -m pipelines.compile --registry {ECR_REGISTRY} --tag 0.1.0" in calls


@pytest.mark.parametrize(
    "registry",
    ["ghcr.io/symptom-dx", "localhost:5000/x", "123456789012.dkr.ecr.eu-west-1.example.com/x"],
)
def test_no_ecr_login_for_other_registries(images_sh, registry) -> None:
    out, calls = images_sh(REGISTRY=registry, TAG="0.1.0", PUSH="1", FAKE_REGISTRY=registry)
    assert out.returncode == 0, out.stderr
    assert not [c for c in calls if c.startswith(("aws ", "docker login"))]


def test_login_region_comes_from_the_registry_host(images_sh) -> None:
    registry = "210987654321.dkr.ecr.ap-northeast-2.amazonaws.com/symptom-dx"
    out, calls = images_sh(REGISTRY=registry, TAG="0.2.0", PUSH="1", FAKE_REGISTRY=registry)
    assert out.returncode == 0, out.stderr
    assert "aws ecr get-login-password --region ap-northeast-2" in calls
