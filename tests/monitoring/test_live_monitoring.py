"""Drift alerts and the dashboard against the real thing: real model servers and a real UI
scraped by a real Prometheus (started as `make run` starts it, with 1 s intervals), loaded
with the rules of manifests/monitoring/prometheusrule.yaml.

Two model servers serve the same model under two names: one gets traffic drawn like the
evaluation's (k=3 vignettes of held-out patterns), the other a shifted mix (respiratory
symptoms only). The drift alerts must stay quiet for the first and go pending (or firing)
for the second; every dashboard panel must return data; every rule loads and evaluates, and
every metric a rule or a panel names is one the real processes expose (so a renamed metric
cannot leave a silent alert or an empty panel behind).
"""

import json
import math
import re
import time

import httpx
import numpy as np
import pytest
from testkit import REPO

from pipelines.local_stack.prometheus import ScrapeTarget, rule_groups, start_prometheus
from pipelines.local_stack.services import free_port
from pipelines.local_stack.traffic import normal_patients, shifted_patients
from symptom_dx.config import DEFAULTS
from symptom_dx.diseases import disease_catalog
from symptom_dx.evaluation import pattern_split

pytestmark = pytest.mark.integration
MONITORING = REPO / "manifests" / "monitoring"
NORMAL, SHIFTED = "disease-classifier", "disease-classifier-shifted"
PATIENTS = 300  # per server: above the 200 a window needs before the drift alerts speak
BATCH = 20  # patients per request
DRIFT_ALERTS = ("DiseaseClassifierInputDrift", "DiseaseClassifierPredictionDrift")
PROMQL_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "rate",
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "scalar",
    "histogram_quantile",
    "absent",
    "abs",
    "increase",
    "vector",
    "round",
    "Inf",
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def infer(url: str, model: str, patients: list) -> httpx.Response:
    texts = [", ".join(p) for p in patients]
    body = {
        "inputs": [{"name": "symptoms", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]
    }
    return httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=10)


class Prom:
    def __init__(self, url: str):
        self.api = f"{url}/api/v1"
        self.client = httpx.Client(timeout=5)  # polled often: one TLS context, not one a query

    def query(self, expr: str) -> list:
        answer = self.client.get(f"{self.api}/query", params={"query": expr}).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else math.nan

    def wait(self, what: str, check, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"Prometheus: {what} within {timeout:.0f} s"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(trained_model_dir, training_set, data_dir, tmp_path_factory):
    """Two model servers, the UI and Prometheus; traffic sent; yields (Prom, servers, ui)."""
    from pipelines.local_stack.model_server import start_model_server
    from pipelines.local_stack.ui_server import start_ui

    root = tmp_path_factory.mktemp("live-monitoring")
    logs = root / "logs"
    started = []
    try:
        servers = {}
        for name in (NORMAL, SHIFTED):
            svc = start_model_server(
                trained_model_dir, free_port(), free_port(), logs, model_name=name
            )
            started.append(svc)
            servers[name] = svc
        ui = start_ui(servers[NORMAL].url, free_port(), data_dir, logs)
        started.append(ui)
        host = lambda s: s.url.removeprefix("http://")  # noqa: E731
        serving = MONITORING / "podmonitor-serving.yaml"
        targets = [
            ScrapeTarget.from_podmonitor(serving, host(servers[NORMAL])),
            ScrapeTarget.from_podmonitor(serving, host(servers[SHIFTED])),
            ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-ui.yaml", host(ui)),
        ]
        prometheus = start_prometheus(
            root / "prometheus",
            free_port(),
            targets,
            MONITORING / "prometheusrule.yaml",
            logs,
            interval="1s",
        )
        started.append(prometheus)
        prom = Prom(prometheus.url)
        # counted only from the first scrape on: wait for it before any traffic
        prom.wait("every target up", lambda: prom.value("count(up == 1)") == len(targets))

        split = pattern_split(training_set, DEFAULTS.test_fraction, DEFAULTS.split_seed)
        pool = normal_patients(split.test, k=3)
        rng = np.random.default_rng(1)
        traffic = {
            NORMAL: [pool[i] for i in rng.integers(0, len(pool), size=PATIENTS)],
            SHIFTED: shifted_patients(PATIENTS, k=3, seed=1),
        }
        for name, patients in traffic.items():
            for i in range(0, len(patients), BATCH):
                answer = infer(servers[name].url, name, patients[i : i + BATCH])
                assert answer.status_code == 200, answer.text
        assert infer(servers[NORMAL].url, NORMAL, [("bananas",)]).status_code == 400

        from gradio_client import Client

        client = Client(ui.url, verbose=False, download_files=False)
        # the UI's latency series appears with its first call: a rate needs a second one
        ui_calls = "sum(symptom_dx_ui_backend_request_duration_seconds_count)"
        for calls in (1, 2):
            client.predict(["cough", "high_fever", "breathlessness"], "en", api_name="/diagnose")
            prom.wait("the UI's calls scraped", lambda n=calls: prom.value(ui_calls) >= n)

        total = f'model_name:disease_classifier_patients:increase1h{{model_name="{SHIFTED}"}}'
        prom.wait("the recording rules counting the traffic", lambda: prom.value(total) >= 200)
        yield prom, servers, ui
    finally:
        for svc in reversed(started):
            svc.stop()


def test_the_reference_is_the_models_training_side(trained_model_dir, training_set):
    """The normal traffic is drawn from the held-out side of the split the model was trained
    on: the other side of the same split."""
    from symptom_dx.model import SymptomClassifier

    split = pattern_split(training_set, DEFAULTS.test_fraction, DEFAULTS.split_seed)
    reference = SymptomClassifier.load(trained_model_dir).reference
    assert reference is not None and reference.patterns == len(split.train)


def alert_states(prom: Prom) -> dict[tuple[str, str], str]:
    alerts = httpx.get(f"{prom.api}/alerts", timeout=5).json()["data"]["alerts"]
    return {
        (a["labels"]["alertname"], a["labels"].get("model_name", "")): a["state"] for a in alerts
    }


def test_normal_traffic_stays_below_the_drift_thresholds(stack):
    prom, _, _ = stack
    for kind in ("input", "prediction"):
        distance = prom.value(
            f'model_name:disease_classifier_{kind}_drift:tvd1h{{model_name="{NORMAL}"}}'
        )
        print(f"normal traffic, {kind} drift: {distance:.3f}")
        assert 0 < distance < drift_threshold(), (kind, distance)
    states = alert_states(prom)
    assert not [k for k in states if k[1] == NORMAL], states


def test_a_shifted_mix_raises_the_drift_alerts(stack):
    prom, _, _ = stack
    for kind in ("input", "prediction"):
        distance = prom.value(
            f'model_name:disease_classifier_{kind}_drift:tvd1h{{model_name="{SHIFTED}"}}'
        )
        print(f"shifted traffic, {kind} drift: {distance:.3f}")
        assert distance > drift_threshold(), (kind, distance)
    prom.wait(
        "the drift alerts pending or firing",
        lambda: all(
            alert_states(prom).get((a, SHIFTED)) in ("pending", "firing") for a in DRIFT_ALERTS
        ),
        timeout=15,
    )


def drift_threshold() -> float:
    """The input drift alert's threshold, read from the rule (the tests never restate it)."""
    alert = next(
        r
        for g in rule_groups(MONITORING / "prometheusrule.yaml")["groups"]
        for r in g["rules"]
        if r.get("alert") == "DiseaseClassifierInputDrift"
    )
    return float(alert["expr"].split(">", 1)[1].split()[0])


def test_every_dashboard_panel_has_data(stack):
    prom, _, _ = stack
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = prom.query(target["expr"])
            values = [float(r["value"][1]) for r in result]
            if not values or all(math.isnan(v) for v in values):
                empty.append(f"{panel['title']} [{target['refId']}]: {target['expr']}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def used_metric_names(rules: dict) -> set[str]:
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    names = set()
    for expr in exprs:
        # drop grouping clauses, label matchers, ranges and strings: what is left are names
        bare = re.sub(
            r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
            r'|\{[^}]*\}|\[[^\]]*\]|"[^"]*"',
            " ",
            expr,
        )
        names |= {n for n in PROMQL_IDENTIFIER.findall(bare) if not n[0].isdigit()}
    return names - PROMQL_WORDS - recorded - {"up"}


def exposed_metric_names(text: str) -> set[str]:
    """Sample names a scrape can return, from the # TYPE lines (present before any sample)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            base = name.removesuffix("_total")
            names |= {base + suffix for suffix in SUFFIXES.get(kind, ("",))} | {name}
    return names


def test_rules_and_dashboard_use_only_exposed_metrics(stack):
    """What the model server's and the UI's processes serve at the path their PodMonitors
    scrape holds every metric name the rules and the dashboard use."""
    _, servers, ui = stack
    exposed: set[str] = set()
    for svc in (servers[NORMAL], ui):
        answer = httpx.get(f"{svc.url}/metrics", timeout=5)
        assert answer.status_code == 200, (svc.name, answer.status_code)
        exposed |= exposed_metric_names(answer.text)
    missing = used_metric_names(rule_groups(MONITORING / "prometheusrule.yaml")) - exposed
    assert not missing, f"rules or dashboard use metrics nobody exposes: {sorted(missing)}"


def test_prometheus_loads_every_rule_and_counts_what_was_served(stack):
    """Every group of the PrometheusRule loaded, every rule evaluated without error; the
    scraped counters hold the traffic: each patient counted, by top disease, and the
    rejected request."""
    prom, _, _ = stack
    normal = f'{{model_name="{NORMAL}"}}'
    prom.wait(
        "the normal server's counters scraped",
        lambda: (
            prom.value(f"sum(disease_classifier_patients_total{normal})") >= PATIENTS
            and prom.value(f"sum(disease_classifier_predictions_total{normal})") >= PATIENTS
            and prom.value(f"sum(disease_classifier_rejected_requests_total{normal})") >= 1
        ),
    )
    diseases = {
        r["metric"]["disease"] for r in prom.query(f"disease_classifier_predictions_total{normal}")
    }
    assert diseases and diseases <= set(disease_catalog().names), diseases  # by name
    groups = prom.client.get(f"{prom.api}/rules").json()["data"]["groups"]
    expected = rule_groups(MONITORING / "prometheusrule.yaml")["groups"]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in expected)
    assert sum(len(g["rules"]) for g in groups) == sum(len(g["rules"]) for g in expected)
    prom.wait(
        "every rule evaluated once",
        lambda: all(
            r.get("lastEvaluation", "0001")[:4] != "0001"
            for g in prom.client.get(f"{prom.api}/rules").json()["data"]["groups"]
            for r in g["rules"]
        ),
        timeout=15,
    )
    groups = prom.client.get(f"{prom.api}/rules").json()["data"]["groups"]
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
