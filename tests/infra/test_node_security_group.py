"""Every webhook and APIService port the platform uses is open from the control plane to the nodes.

The EKS control plane reaches webhook and aggregated-API servers at their pods' addresses,
through the node security group. Its rules are the eks module's defaults at the pinned version
plus ours (node_security_group_additional_rules in modules/cluster/main.tf).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from infra_tfparse import TERRAFORM_DIR, deep_unq, dir_blocks, unq

CLUSTER_DIR = TERRAFORM_DIR / "modules" / "cluster"
HELM_PLATFORM_DIR = TERRAFORM_DIR.parent / "helm" / "platform"

# The node security group rules terraform-aws-modules/eks/aws creates by default, per pinned
# version: locals node_security_group_rules and node_security_group_recommended_rules
# (node_security_group_enable_recommended_rules defaults to true) in node_groups.tf, read at
# tag v21.3.2. The metrics-server port 10251 joined the recommended rules in v21.7.0
# (CHANGELOG: "Add recommended security group rule for port 10251 to match EKS addon for
# metrics-server"). Re-record this when bumping the module.
MODULE_DEFAULT_RULES = {
    "21.3.2": {
        "ingress_cluster_443": ("ingress", "tcp", 443, 443, "cluster"),
        "ingress_cluster_kubelet": ("ingress", "tcp", 10250, 10250, "cluster"),
        "ingress_self_coredns_tcp": ("ingress", "tcp", 53, 53, "self"),
        "ingress_self_coredns_udp": ("ingress", "udp", 53, 53, "self"),
        "ingress_nodes_ephemeral": ("ingress", "tcp", 1025, 65535, "self"),
        "ingress_cluster_4443_webhook": ("ingress", "tcp", 4443, 4443, "cluster"),
        "ingress_cluster_6443_webhook": ("ingress", "tcp", 6443, 6443, "cluster"),
        "ingress_cluster_8443_webhook": ("ingress", "tcp", 8443, 8443, "cluster"),
        "ingress_cluster_9443_webhook": ("ingress", "tcp", 9443, 9443, "cluster"),
        "egress_all": ("egress", "-1", 0, 0, "0.0.0.0/0"),
    },
}

# Every port the control plane must reach on a pod: (what, port, where it comes from).
PLATFORM_PORTS = [
    (
        "KServe webhook server (kserve-webhook-server-service 443 -> webhook-server)",
        9443,
        "kserve chart v0.16.0 templates/deployment.yaml, containerPort 9443 name webhook-server",
    ),
    (
        "cert-manager webhook",
        10250,
        "cert-manager chart v1.18.2 values.yaml webhook.securePort: 10250 (hostNetwork: false)",
    ),
    (
        "kube-prometheus-stack operator admission webhook (served by the operator)",
        10250,
        "kube-prometheus-stack 78.5.0 values.yaml prometheusOperator.tls.internalPort: 10250,"
        " admissionWebhooks.deployment.enabled: false (prometheus-community/helm-charts"
        " 2ec74f2c78030efedec8e0e33aa52225d14ff419)",
    ),
    (
        "metrics-server (EKS add-on), APIService v1beta1.metrics.k8s.io",
        10251,
        "EKS metrics-server add-on's port; terraform-aws-eks v21.7.0 CHANGELOG",
    ),
]
# Searched and found none: Kubeflow Pipelines 2.14.3 env/platform-agnostic (its cache
# webhook is removed by our without-cache component), MinIO 5.4.0, cluster-autoscaler 9.52.1,
# the vpc-cni, coredns, kube-proxy, pod identity agent and EBS CSI add-ons.


def eks_module() -> dict:
    return dir_blocks(CLUSTER_DIR, "module")["eks"]


def pinned_version() -> str:
    return unq(eks_module()["version"])


def our_rules() -> dict[str, tuple]:
    rules = deep_unq(eks_module().get("node_security_group_additional_rules", {}))
    out = {}
    for key, rule in rules.items():
        source = "cluster" if rule.get("source_cluster_security_group") else "other"
        out[key] = (
            rule.get("type", "ingress"),
            rule.get("protocol", "tcp"),
            rule["from_port"],
            rule["to_port"],
            source,
        )
    return out


def node_rules() -> dict[str, tuple]:
    # the module merges defaults and additional rules by key: ours win on a shared key
    return {**MODULE_DEFAULT_RULES[pinned_version()], **our_rules()}


def test_module_defaults_are_recorded_for_the_pinned_version() -> None:
    assert pinned_version() in MODULE_DEFAULT_RULES, (
        f"eks module {pinned_version()}: record its default node security group rules here"
    )
    for key in ("node_security_group_enable_recommended_rules", "create_node_security_group"):
        assert key not in eks_module(), f"{key} changes the defaults recorded here"


@pytest.mark.parametrize(
    ("what", "port", "source"),
    PLATFORM_PORTS,
    ids=["kserve", "cert-manager", "kube-prometheus-stack", "metrics-server"],
)
def test_port_is_open_from_the_cluster_security_group(what: str, port: int, source: str) -> None:
    opening = [
        key
        for key, (kind, protocol, low, high, peer) in node_rules().items()
        if kind == "ingress" and protocol in ("tcp", "-1") and low <= port <= high
        if peer == "cluster"
    ]
    assert opening, f"{what}: port {port} ({source}) is not open from the cluster security group"


def test_metrics_server_rule_matches_the_module_rule_of_later_versions() -> None:
    """Same key as the module's own rule from v21.7.0, so a bump merges instead of duplicating
    (AWS refuses a duplicate security group rule)."""
    rule = our_rules()["ingress_cluster_10251_webhook"]
    assert rule == ("ingress", "tcp", 10251, 10251, "cluster")
    assert "metrics-server" in eks_module()["addons"]


def test_our_values_keep_the_chart_webhook_ports() -> None:
    cert_manager = yaml.safe_load((HELM_PLATFORM_DIR / "cert-manager.yaml").read_text())
    assert "webhook" not in cert_manager or not {"securePort", "hostNetwork"} & set(
        cert_manager["webhook"]
    )
    kps = yaml.safe_load((HELM_PLATFORM_DIR / "kube-prometheus-stack.yaml").read_text())
    operator = kps.get("prometheusOperator", {})
    assert "tls" not in operator and "admissionWebhooks" not in operator
    assert "hostNetwork" not in operator
    kserve = yaml.safe_load((HELM_PLATFORM_DIR / "kserve.yaml").read_text())
    assert "webhookServiceAnnotations" not in kserve["kserve"]["controller"]


def gomodcache() -> Path:
    tools = os.environ.get("CLUSTER_TOOLS_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "symptom-dx"
    )
    return Path(tools) / "go" / "mod"


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        (
            "github.com/kserve/kserve@v0.16.0/charts/kserve-resources/templates/deployment.yaml",
            r"containerPort: 9443\n\s+name: webhook-server",
        ),
        (
            "github.com/cert-manager/cert-manager@v1.18.2/deploy/charts/cert-manager/values.yaml",
            r"\n  securePort: 10250\n",
        ),
    ],
    ids=["kserve", "cert-manager"],
)
def test_recorded_ports_match_the_chart_sources_in_the_go_module_cache(
    path: str, pattern: str
) -> None:
    source = gomodcache() / path
    if not source.is_file():
        pytest.skip(f"{source} is not in the Go module cache (the table above records it)")
    assert re.search(pattern, source.read_text(encoding="utf-8")), path
