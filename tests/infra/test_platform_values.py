"""The helm/platform override files parse and name only documented chart keys.

Documented keys live in fixtures/chart_documented_keys.yaml, recorded from
each chart's upstream values.yaml (or its generated values table) with the
source repo, path and revision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_tfparse import TERRAFORM_DIR, dir_blocks, dir_resources, expr, unq

HELM_PLATFORM_DIR = TERRAFORM_DIR.parent / "helm" / "platform"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "chart_documented_keys.yaml"
PLATFORM_MODULE = TERRAFORM_DIR / "modules" / "platform"
ENV_DIR = TERRAFORM_DIR / "envs" / "dev"

CHARTS: dict[str, dict] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))["charts"]

# Which terraform variable pins which chart's version.
VERSION_VARIABLES = {
    "kube-prometheus-stack": "kube_prometheus_stack_version",
    "cert-manager": "cert_manager_version",
    "kserve": "kserve_version",
    "minio": "minio_chart_version",
    "cluster-autoscaler": "cluster_autoscaler_chart_version",
}

# terraform helm_release name -> fixture chart
RELEASE_CHART = {
    "kube_prometheus_stack": "kube-prometheus-stack",
    "cert_manager": "cert-manager",
    "kserve": "kserve",
    "minio": "minio",
    "cluster_autoscaler": "cluster-autoscaler",
}


def key_paths(tree: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key path in a values tree (lists are leaves)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from key_paths(value, path)


def is_documented(path: str, chart: dict) -> bool:
    documented = set(chart["keys"]) | set(chart.get("commented_keys", []))
    if path in documented:
        return True
    # Parents of a documented key are documented too.
    if any(key.startswith(path + ".") for key in documented):
        return True
    # Anything below a free-form map (resources, labels, extraArgs...).
    return any(path.startswith(open_map + ".") for open_map in chart.get("open_maps", []))


def load_values(name: str) -> dict:
    data = yaml.safe_load((HELM_PLATFORM_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def test_fixture_records_provenance_for_every_chart() -> None:
    for name, chart in CHARTS.items():
        source = chart["source"]
        assert source["repo"] and source["path"] and source["commit"], name
        assert chart["version"], name
        assert chart["keys"], name
        # Open maps and commented keys must hang off a recorded key.
        for extra in chart.get("open_maps", []) + chart.get("commented_keys", []):
            assert extra in chart["keys"] or any(
                extra.startswith(key + ".") for key in chart["keys"]
            ), f"{name}: {extra} does not extend a recorded key"


@pytest.mark.parametrize(
    ("chart_name", "path"),
    [
        ("kube-prometheus-stack", "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValue"),
        ("kserve", "kserve.controller.deploymentmode"),
        ("minio", "rootUserName"),
        ("cert-manager", "prometheus.serviceMonitor.enabled"),
    ],
)
def test_undocumented_keys_are_rejected(chart_name: str, path: str) -> None:
    assert not is_documented(path, CHARTS[chart_name])


def test_every_values_file_is_covered_by_the_fixture() -> None:
    files = {p.name for p in HELM_PLATFORM_DIR.glob("*.yaml")}
    covered = {chart["values_file"] for chart in CHARTS.values()}
    assert files == covered


@pytest.mark.parametrize("chart_name", sorted(CHARTS))
def test_values_file_names_only_documented_keys(chart_name: str) -> None:
    chart = CHARTS[chart_name]
    values = load_values(chart["values_file"])
    unknown = [p for p in key_paths(values) if not is_documented(p, chart)]
    assert not unknown, (
        f"{chart['values_file']}: keys not in {chart_name} {chart['version']}: {unknown}"
    )


def terraform_set_names(release: dict) -> list[str]:
    names = []
    for attr in ("set", "set_sensitive"):
        for item in release.get(attr, []) or []:
            names.append(unq(item["name"]))
    return names


def _skip_value(text: str, i: int) -> int:
    """Advance past one HCL value (up to a depth-0 ',' or closing '}')."""
    depth, quote = 0, False
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == '"':
                quote = False
        elif char == '"':
            quote = True
        elif char in "{[(":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif char == "," and depth == 0:
            return i
        i += 1
    return i


def _object_keys(text: str, i: int, prefix: str, out: list[str]) -> int:
    """Collect dotted key paths of an HCL object literal starting at text[i] == '{'."""
    assert text[i] == "{"
    i += 1
    while i < len(text):
        while i < len(text) and text[i] in " \n\t,":
            i += 1
        if text[i] == "}":
            return i + 1
        match = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*").match(text, i)
        assert match, text[i : i + 40]
        path = f"{prefix}.{match.group(1)}" if prefix else match.group(1)
        out.append(path)
        i = match.end()
        i = _object_keys(text, i, path, out) if text[i] == "{" else _skip_value(text, i)
    return i


def yamlencode_keys(release: dict) -> list[str]:
    """Key paths of the yamlencode({...}) documents terraform adds to a release."""
    keys: list[str] = []
    for value in release.get("values", []):
        start = value.find("yamlencode({")
        if start >= 0:
            _object_keys(value, start + len("yamlencode("), "", keys)
    return keys


@pytest.mark.parametrize("release_name", sorted(RELEASE_CHART))
def test_keys_terraform_sets_are_documented(release_name: str) -> None:
    release = dir_resources(PLATFORM_MODULE)[("helm_release", release_name)]
    chart = CHARTS[RELEASE_CHART[release_name]]
    for path in terraform_set_names(release) + yamlencode_keys(release):
        assert is_documented(path, chart), f"{release_name}: terraform sets undocumented key {path}"


def test_minio_release_sets_credentials_bucket_and_user_from_terraform() -> None:
    release = dir_resources(PLATFORM_MODULE)[("helm_release", "minio")]
    assert set(yamlencode_keys(release)) == {
        "existingSecret",
        "persistence",
        "persistence.size",
        "buckets",
        "users",
    }


@pytest.mark.parametrize("chart_name", sorted(VERSION_VARIABLES))
def test_chart_versions_agree_everywhere(chart_name: str) -> None:
    variable = VERSION_VARIABLES[chart_name]
    version = CHARTS[chart_name]["version"]
    for directory in (PLATFORM_MODULE, ENV_DIR):
        assert unq(dir_blocks(directory, "variable")[variable]["default"]) == version, directory
    readme = (HELM_PLATFORM_DIR / "README.md").read_text(encoding="utf-8")
    assert version in readme, f"helm/platform/README.md does not pin {chart_name} {version}"
    header = (HELM_PLATFORM_DIR / CHARTS[chart_name]["values_file"]).read_text(encoding="utf-8")
    assert version in header.splitlines()[0] + header.splitlines()[1], (
        "values file header names the version"
    )


def test_kube_prometheus_stack_selects_all_monitors_and_rules() -> None:
    spec = load_values("kube-prometheus-stack.yaml")["prometheus"]["prometheusSpec"]
    for selector in (
        "serviceMonitorSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
        "probeSelectorNilUsesHelmValues",
    ):
        assert spec[selector] is False, selector
    release = dir_resources(PLATFORM_MODULE)[("helm_release", "kube_prometheus_stack")]
    assert unq(release["name"]) == "kube-prometheus-stack"


def test_grafana_dashboard_sidecar_matches_our_configmaps() -> None:
    dashboards = load_values("kube-prometheus-stack.yaml")["grafana"]["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert dashboards["label"] == "grafana_dashboard"
    assert dashboards["labelValue"] == "1"
    assert dashboards["searchNamespace"] == "ALL"


def test_kserve_runs_raw_deployments_without_knative_or_istio() -> None:
    controller = load_values("kserve.yaml")["kserve"]["controller"]
    # v0.16 name of RawDeployment mode.
    assert controller["deploymentMode"] in {"Standard", "RawDeployment"}
    assert controller["gateway"]["disableIstioVirtualHost"] is True


def test_minio_values_carry_no_default_users_or_credentials() -> None:
    values = load_values("minio.yaml")
    assert values["users"] == []
    for key in ("rootUser", "rootPassword", "existingSecret"):
        assert key not in values, f"{key} is environment-specific (terraform sets it)"
    assert values["persistence"]["storageClass"] == "gp3"


def test_servicemonitors_carry_the_release_label() -> None:
    assert load_values("cert-manager.yaml")["prometheus"]["servicemonitor"]["labels"] == {
        "release": "kube-prometheus-stack"
    }
    assert load_values("minio.yaml")["metrics"]["serviceMonitor"]["additionalLabels"] == {
        "release": "kube-prometheus-stack"
    }


def test_cluster_autoscaler_service_account_matches_pod_identity() -> None:
    values = load_values("cluster-autoscaler.yaml")
    association = dir_resources(PLATFORM_MODULE)[
        ("aws_eks_pod_identity_association", "cluster_autoscaler")
    ]
    assert values["rbac"]["serviceAccount"]["name"] == unq(association["service_account"])
    assert unq(association["namespace"]) == "kube-system"
    assert expr(association["role_arn"]) == "aws_iam_role.cluster_autoscaler.arn"


def test_plain_helm_readme_installs_in_the_terraform_order() -> None:
    readme = (HELM_PLATFORM_DIR / "README.md").read_text(encoding="utf-8")
    order = [
        "kube-prometheus-stack",
        "cert-manager",
        "kserve-crd",
        "kserve ",
        "minio",
        "cluster-autoscaler",
    ]
    positions = [readme.find(f"helm upgrade --install {name}") for name in order]
    assert all(p >= 0 for p in positions), dict(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    # KFP by the script terraform runs, at terraform's version (it applies upstream's kustomize
    # manifests at that tag, without the cache server)
    kfp_default = unq(dir_blocks(ENV_DIR, "variable")["kfp_version"]["default"])
    assert f"kubeflow-pipelines/install.sh {kfp_default}" in readme
