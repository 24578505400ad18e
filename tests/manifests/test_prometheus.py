"""A real Prometheus scrapes the real model server and loads our alert rules.

Also checks that every metric the rules and the dashboard use is one our processes expose,
so a renamed metric cannot leave a silent alert or an empty panel behind.
"""

import json
import re
import subprocess
import time

import httpx
import pytest
import yaml
from testkit import REPO

from symptom_dx.local.services import free_port, spawn, wait_until

pytestmark = pytest.mark.integration
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


@pytest.fixture(scope="module")
def model_server(trained_model_dir, tmp_path_factory):
    from serving.launcher import start_model_server

    svc = start_model_server(
        trained_model_dir, free_port(), free_port(), tmp_path_factory.mktemp("logs")
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def rules():
    rendered = yaml.safe_load((REPO / "manifests/monitoring/prometheusrule.yaml").read_text())
    return rendered["spec"]


def used_metric_names(rules) -> set[str]:
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((REPO / "manifests/monitoring/dashboard.json").read_text())
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


def test_rules_and_dashboard_use_only_exposed_metrics(model_server, rules):
    from prometheus_client import generate_latest

    import ui.metrics  # noqa: F401 - registers the UI's metrics in this process

    served = httpx.get(f"{model_server.url}/metrics").text
    exposed = exposed_metric_names(served) | exposed_metric_names(generate_latest().decode())
    missing = used_metric_names(rules) - exposed
    assert not missing, f"rules or dashboard use metrics nobody exposes: {sorted(missing)}"


def test_prometheus_scrapes_the_server_and_loads_the_rules(model_server, rules, tmp_path):
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(yaml.safe_dump(rules))
    host = model_server.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_path)],
        "scrape_configs": [
            {
                "job_name": "kserve-inference/disease-classifier",
                "static_configs": [{"targets": [host]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    check = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    prom = spawn(
        "prometheus",
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200,
            30,
            "Prometheus",
            prom.proc,
        )
        infer = f"{model_server.url}/v2/models/disease-classifier/infer"
        body = {
            "inputs": [
                {
                    "name": "symptoms",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": ["itching,skin_rash"],
                }
            ]
        }
        for _ in range(5):
            assert httpx.post(infer, json=body).status_code == 200
        bad = {
            "inputs": [{"name": "symptoms", "datatype": "BYTES", "shape": [1], "data": ["bananas"]}]
        }
        assert httpx.post(infer, json=bad).status_code == 400

        def value(query: str) -> float:
            result = httpx.get(f"{api}/query", params={"query": query}).json()["data"]["result"]
            return float(result[0]["value"][1]) if result else -1.0

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (
                value('up{job="kserve-inference/disease-classifier"}') == 1
                and value("sum(disease_classifier_patients_total)") >= 5
                and value("sum(disease_classifier_rejected_requests_total)") >= 1
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus did not scrape the model server's metrics")
        assert value('disease_classifier_predictions_total{disease="Fungal infection"}') >= 5
        groups = httpx.get(f"{api}/rules").json()["data"]["groups"]
        assert {g["name"] for g in groups} == {g["name"] for g in rules["groups"]}
        assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    finally:
        prom.stop()
