"""The release workflow: actionlint-clean, and it builds exactly the images the project has."""

import subprocess
from pathlib import Path

import pytest
import yaml
from testkit import REPO

from pipelines.compile import image_targets

WORKFLOWS = REPO / ".github" / "workflows"


@pytest.mark.tools  # actionlint, built into .tools/ by scripts/go-tools.sh
def test_actionlint_passes():
    tools = subprocess.run(
        ["bash", str(REPO / "scripts" / "go-tools.sh")], capture_output=True, text=True
    )
    assert tools.returncode == 0, tools.stderr[-2000:]
    lint = subprocess.run(
        [str(Path(tools.stdout.strip()) / "actionlint"), *map(str, WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_release_builds_every_dockerfile_target():
    workflow = yaml.safe_load((WORKFLOWS / "images.yml").read_text())
    matrix = workflow["jobs"]["build-push"]["strategy"]["matrix"]["target"]
    assert sorted(matrix) == sorted(image_targets())
    stages = {
        line.split()[-1]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ") and " AS " in line
    }
    assert set(matrix) <= stages
