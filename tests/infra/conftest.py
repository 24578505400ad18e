"""Shared fixtures for the infrastructure tests (offline: no AWS, no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
HELM_PLATFORM_DIR = REPO_ROOT / "helm" / "platform"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def terraform_dir() -> Path:
    return TERRAFORM_DIR


@pytest.fixture(scope="session")
def helm_platform_dir() -> Path:
    return HELM_PLATFORM_DIR


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES_DIR
