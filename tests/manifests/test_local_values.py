"""The local cluster installs the platform's charts as terraform does - the same charts and
helm/platform values files - plus one local values file each that may change only images,
resources, and the parts this machine cannot build (scripts/cluster/monitoring/, kserve/)."""

import subprocess

import pytest
import yaml
from testkit import REPO, cluster_setting

LOCAL = REPO / "scripts" / "cluster" / "monitoring" / "values-local.yaml"
PLATFORM = REPO / "helm" / "platform" / "kube-prometheus-stack.yaml"
# what the local file may set, besides any `image` and `resources` key: no gp3 volume here, no
# kube-webhook-certgen, Grafana and kube-state-metrics not built, the node's / a private mount
# (scripts/cluster/monitoring.sh)
ALLOWED = {
    "prometheus.prometheusSpec.storageSpec",
    "prometheus-node-exporter.hostRootFsMount.mountPropagation",
    "prometheusOperator.admissionWebhooks.patch.enabled",
    "prometheusOperator.admissionWebhooks.failurePolicy",
    "grafana.enabled",
    "kubeStateMetrics.enabled",
}
IMAGES = (
    "PROMETHEUS_OPERATOR_IMAGE",
    "PROMETHEUS_CONFIG_RELOADER_IMAGE",
    "PROMETHEUS_IMAGE",
    "ALERTMANAGER_IMAGE",
    "NODE_EXPORTER_IMAGE",
)


def leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if key in ("image", "resources") or not isinstance(value, dict):
            yield path, key
        else:
            yield from leaves(value, f"{path}.")


def test_the_local_values_change_only_images_resources_and_what_cannot_be_built():
    for path, key in leaves(yaml.safe_load(LOCAL.read_text())):
        assert key in ("image", "resources") or path in ALLOWED, path


@pytest.mark.parametrize("chart", ["cert-manager", "kserve"])
def test_cert_managers_and_kserves_local_values_set_only_images_and_resources(chart):
    local = REPO / "scripts" / "cluster" / "kserve" / f"values-{chart}.yaml"
    image_keys = ("image", "repository", "tag", "rbacProxyImage")
    for path, key in leaves(yaml.safe_load(local.read_text())):
        assert key in (*image_keys, "resources"), path
    platform = yaml.safe_load((REPO / "helm" / "platform" / f"{chart}.yaml").read_text())
    assert "image" not in platform  # the platform's own choice of images stays upstream's


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    chart = cluster_setting("KPS_CHART_VERSION")[0]
    packaged = REPO.parent / "shared" / "charts" / f"kube-prometheus-stack-{chart}.tgz"
    if not packaged.exists():
        pytest.skip(f"{packaged} is not on this machine")
    helm = subprocess.run(
        ["bash", str(REPO / "scripts" / "k8s-tools.sh")], capture_output=True, text=True
    ).stdout.strip()
    command = [f"{helm}/helm", "template", "kube-prometheus-stack", str(packaged), "-n"]
    command += ["monitoring", "-f", str(PLATFORM), "-f", str(LOCAL)]
    command += ["--set", "prometheusOperator.admissionWebhooks.caBundle=Y2E="]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.tools  # helm template
def test_every_image_is_one_the_cluster_build_makes(rendered):
    built = set(cluster_setting(*IMAGES))
    text = yaml.safe_dump_all(rendered)
    named = {
        line.split("image:", 1)[1].strip().strip('"')
        for line in text.splitlines()
        if "image:" in line
    }
    reloader = [
        arg.split("=", 1)[1]
        for d in rendered
        if d["kind"] == "Deployment"
        for arg in d["spec"]["template"]["spec"]["containers"][0].get("args", [])
        if arg.startswith("--prometheus-config-reloader=")
    ]
    assert named | set(reloader) == built


@pytest.mark.tools
def test_the_platform_values_still_apply_locally(rendered):
    [prometheus] = [d for d in rendered if d["kind"] == "Prometheus"]
    platform = yaml.safe_load(PLATFORM.read_text())["prometheus"]["prometheusSpec"]
    assert prometheus["spec"]["retention"] == platform["retention"]
    assert prometheus["spec"]["podMonitorSelector"] == {}  # every PodMonitor, ours included
    assert prometheus["spec"]["ruleSelector"] == {}
    assert "storage" not in prometheus["spec"]
