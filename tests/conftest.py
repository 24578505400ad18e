"""Shared fixtures: the Kaggle data folder, a trained model folder, a real S3 server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from testkit import REPO, S3_ACCESS_KEY, S3_SECRET_KEY

from pipelines.local_stack.services import free_port, start_s3
from symptom_dx.process_exit import skip_final_collection

# The files that take longest (`pytest --durations=0`), first: `make test` runs each file on
# one pytest-xdist worker (`--dist loadfile`: a file's tests share module fixtures such as
# servers and pipeline runs), and the workers finish together when the long ones start early
# (`--no-loadscope-reorder`: else xdist starts the files with the most tests first).
LONGEST_FIRST = (
    "tests/pipeline/test_make_run.py",
    "tests/images/test_images.py",
    "tests/serving/test_fuzz.py",
    "tests/pipeline/test_make_run_stopped.py",
    "tests/ui/test_browser.py",
    "tests/monitoring/test_live_monitoring.py",
    "tests/serving/test_connection_bounds.py",
    "tests/serving/test_process.py",
    "tests/ui/test_entrypoint.py",
    "tests/unit/test_rank_batch.py",
)


# A test that uses one of these fixtures (itself or through another fixture) gets the marker
# wherever it is, so `make test-fast`, which deselects both markers, never starts a server or
# looks for a tool, even for a test whose file forgot the marker.
FIXTURE_MARKS = {"s3_server": "integration", "k8s_tools": "tools"}


def pytest_configure(config: pytest.Config) -> None:
    # pytest and each of its workers end at once too: the last collection over everything
    # the suite imported takes ~2.5 s of a run's end
    skip_final_collection()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in item.fixturenames:
                item.add_marker(mark)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The Kaggle files: DATA_DIR, else the shared read-only copy beside the repository."""
    path = Path(os.environ.get("DATA_DIR") or REPO.parent / "shared/data/kaggle-disease-prediction")
    if not (path / "Training.csv").is_file():
        pytest.fail(
            f"Kaggle data not found in {path}: set DATA_DIR to the folder with Training.csv"
        )
    return path


@pytest.fixture(scope="session")
def training_set(data_dir):
    from symptom_dx.dataset import load_dataset

    return load_dataset(data_dir / "Training.csv")


@pytest.fixture(scope="session")
def default_candidate(training_set):
    """(model, split): the pipeline's default candidate trained on the training side of the
    default split, once a session (every test reads it; none changes it)."""
    from symptom_dx.steps import train_default_candidate

    return train_default_candidate(training_set)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, default_candidate) -> Path:
    """The pipeline's default candidate trained on the held-out split's training side."""
    model, _ = default_candidate
    return model.save(tmp_path_factory.mktemp("model") / "disease-classifier")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS) on a free loopback port; yields the Service (``.url``)."""
    root = tmp_path_factory.mktemp("s3")
    svc = start_s3(root / "data", free_port(), S3_ACCESS_KEY, S3_SECRET_KEY, root / "logs")
    svc.extra.update(access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def k8s_tools() -> Path:
    """The folder with kubectl and helm (scripts/k8s-tools.sh puts them in .tools/bin)."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "k8s-tools.sh")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def rendered_manifests(k8s_tools) -> list[dict]:
    """Every object `kubectl apply -k manifests/` would send, as kustomize renders it."""
    import yaml

    rendered = subprocess.run(
        [str(k8s_tools / "kubectl"), "kustomize", str(REPO / "manifests")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]
