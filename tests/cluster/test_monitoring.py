"""The application's monitoring under kube-prometheus-stack as terraform installs it (the chart
and helm/platform values; scripts/cluster/monitoring.sh): the operator turns our PodMonitors into
scrape targets and our PrometheusRule into loaded rules, and shifted traffic to the served model
fires DiseaseClassifierInputDrift, which Alertmanager receives.

The alert waits 15 minutes (`for: 15m`) before it fires; the drift test shortens that one field
in the cluster for its run (the operator reconciles the change like any other) and restores it.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from conftest import ISVC, NS
from kube import kubectl, service_url, wait_for
from testkit import REPO
from testkit import prometheus as prometheus_api

from pipelines.local_stack.prometheus import rule_groups
from pipelines.local_stack.traffic import shifted_patients
from symptom_dx import contract

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

MONITORING = "monitoring"
RELEASE = "kube-prometheus-stack"  # terraform's release name (terraform/modules/platform/helm.tf)
RULE = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"
DRIFT = "DiseaseClassifierInputDrift"
PATIENTS, BATCH = 300, 20  # above the 200 patients a window needs before the drift alerts speak


class Prometheus:
    def __init__(self):
        self.url = service_url(MONITORING, f"{RELEASE}-prometheus", 9090)

    def get(self, path: str, **params) -> dict:
        return prometheus_api(self.url, path, **params)

    def pools_up(self) -> dict[str, bool]:
        """Scrape pool -> every target of it up."""
        pools: dict[str, bool] = {}
        for target in self.get("targets", state="active")["activeTargets"]:
            pool = target["scrapePool"]
            pools[pool] = pools.get(pool, True) and target["health"] == "up"
        return pools

    def alert_state(self, name: str) -> str:
        alerts = self.get("alerts")["alerts"]
        states = {a["state"] for a in alerts if a["labels"].get("alertname") == name}
        return "firing" if "firing" in states else next(iter(states), "inactive")


@pytest.fixture(scope="module")
def prometheus(served) -> Prometheus:
    return Prometheus()


def pod_monitor_pool(name: str) -> str:
    # the operator names a PodMonitor's scrape pool podMonitor/<namespace>/<name>/<endpoint>
    return f"podMonitor/{NS}/{name}/0"


def test_the_operator_turns_our_pod_monitors_into_targets_that_are_up(prometheus):
    wanted = [pod_monitor_pool(ISVC), pod_monitor_pool("symptom-dx-ui")]

    def all_up() -> dict | None:
        pools = prometheus.pools_up()
        return pools if all(pools.get(w) for w in wanted) else None

    pools = wait_for(
        all_up,
        180,
        "the predictor's and the UI's targets up in the cluster's Prometheus",
        every=5,
    )
    print("scrape pools:", json.dumps(pools, sort_keys=True))


def test_the_operator_loads_our_rules(prometheus):
    ours = {g["name"] for g in rule_groups(RULE)["groups"]}

    def loaded() -> bool:
        return ours <= {g["name"] for g in prometheus.get("rules")["groups"]}

    wait_for(loaded, 120, f"rule groups {sorted(ours)} loaded", every=5)


def test_shifted_traffic_fires_the_input_drift_alert_and_alertmanager_receives_it(prometheus):
    path = rule_path(DRIFT)
    original = rule_groups(RULE)["groups"][path[0]]["rules"][path[1]]["for"]
    patch = lambda value: json.dumps(  # noqa: E731
        [{"op": "replace", "path": f"/spec/groups/{path[0]}/rules/{path[1]}/for", "value": value}]
    )
    kubectl("-n", NS, "patch", "prometheusrule", "symptom-dx", "--type=json", "-p", patch("0s"))
    try:
        url = service_url(NS, f"{ISVC}-predictor", 80)
        patients = shifted_patients(PATIENTS, k=3, seed=1)
        with httpx.Client(timeout=10) as client:
            for i in range(0, PATIENTS, BATCH):
                body = contract.infer_request([list(p) for p in patients[i : i + BATCH]], top_k=3)
                answer = client.post(f"{url}/v2/models/{contract.MODEL_NAME}/infer", json=body)
                assert answer.status_code == 200, answer.text
        t0 = time.monotonic()
        wait_for(
            lambda: prometheus.alert_state(DRIFT) == "firing",
            300,
            f"{DRIFT} firing in the cluster's Prometheus",
            every=5,
        )
        firing_after = time.monotonic() - t0
        alertmanager = service_url(MONITORING, f"{RELEASE}-alertmanager", 9093)
        received = wait_for(
            lambda: [
                a
                for a in httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
                if a["labels"].get("alertname") == DRIFT
            ],
            120,
            f"{DRIFT} received by Alertmanager",
            every=5,
        )
        print(f"{DRIFT} firing {firing_after:.0f} s after the traffic; in Alertmanager:", received)
        assert received[0]["labels"]["model_name"] == contract.MODEL_NAME
        assert received[0]["annotations"]["runbook_url"].endswith("#diseaseclassifierinputdrift")
    finally:
        kubectl(
            "-n", NS, "patch", "prometheusrule", "symptom-dx", "--type=json", "-p",
            patch(original),
        )  # fmt: skip


def rule_path(alert: str) -> tuple[int, int]:
    for g, group in enumerate(rule_groups(RULE)["groups"]):
        for r, rule in enumerate(group["rules"]):
            if rule.get("alert") == alert:
                return g, r
    raise AssertionError(f"{alert} is not in {RULE}")
