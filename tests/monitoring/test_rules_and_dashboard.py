"""The monitoring manifests hold together without a cluster: rule naming, runbooks in the
README, the dashboard's thresholds against the alerts', the local Prometheus configuration
`make run` generates from them, and the drift thresholds against the traffic they were
measured on (bench/drift_baseline.py, smaller)."""

import json
import re
import subprocess
from collections import Counter

import numpy as np
import pytest
import yaml
from testkit import REPO

from pipelines.local_stack.prometheus import (
    MLFLOW_JOB,
    ScrapeTarget,
    prometheus_config,
    rule_groups,
    write_rule_file,
)

MONITORING = REPO / "manifests" / "monitoring"
RULES = rule_groups(MONITORING / "prometheusrule.yaml")
ALL = [r for g in RULES["groups"] for r in g["rules"]]
ALERTS = {r["alert"]: r for r in ALL if "alert" in r}
DRIFT_ALERTS = ("DiseaseClassifierInputDrift", "DiseaseClassifierPredictionDrift")
DASHBOARD = json.loads((MONITORING / "dashboard.json").read_text())


def drift_alert_limits(alert: str) -> tuple[float, float]:
    """(distance threshold, minimum patients per window) of a drift alert's expression."""
    expr = " ".join(ALERTS[alert]["expr"].split())
    found = re.fullmatch(r"\S+:tvd1h > ([0-9.]+) and on \(model_name\) \S+ >= ([0-9]+)", expr)
    assert found, expr
    return float(found[1]), float(found[2])


def test_recording_rules_are_named_level_metric_operations():
    for rule in ALL:
        if "record" in rule:
            level, metric, operations = rule["record"].split(":")
            assert level and metric and operations, rule["record"]
            # the level names the labels the outermost aggregation keeps
            kept = re.search(r"\b(?:sum|avg|max|min|count) by \(([^)]*)\)", rule["expr"])
            labels = [x.strip() for x in kept[1].split(",")] if kept else []
            if labels and "le" not in labels:
                assert level == "_".join(labels), rule["record"]


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_in_the_readme():
    readme = (REPO / "README.md").read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)}
    for name, alert in ALERTS.items():
        url = alert["annotations"].get("runbook_url", "")
        assert url == f"README.md#{name.lower()}", (name, url)
        assert url.split("#")[1] in anchors, f"README.md has no section {name}"


def test_the_drift_alerts_and_the_dashboard_agree():
    limits = {drift_alert_limits(a) for a in DRIFT_ALERTS}
    assert len(limits) == 1, limits
    ((threshold, patients),) = limits
    panels = {p["title"]: p for p in DASHBOARD["panels"]}
    drift = next(p for t, p in panels.items() if t.startswith("Drift from the training mix"))
    steps = drift["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, threshold]
    assert f"alerts above {threshold}" in drift["title"]
    exprs = {t["expr"] for t in drift["targets"]}
    assert exprs == {
        "model_name:disease_classifier_input_drift:tvd1h",
        "model_name:disease_classifier_prediction_drift:tvd1h",
    }
    assert any(f"drift alerts need {patients:.0f}" in t for t in panels)
    assert any("rejected" in t.lower() and "reason" in t.lower() for t in panels)


def test_the_local_jobs_are_the_podmonitors_jobs():
    serving = ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-serving.yaml", "h:1")
    ui = ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-ui.yaml", "h:2")
    assert (serving.job, serving.interval) == ("kserve-inference/disease-classifier", "15s")
    assert (ui.job, ui.interval) == ("kserve-inference/symptom-dx-ui", "30s")
    # the alerts select the predictor by job; the UI's and MLflow's jobs must not match
    selector = re.search(r'job=~"([^"]+)"', ALERTS["DiseaseClassifierDown"]["expr"])[1]
    assert re.fullmatch(selector, serving.job)
    assert not re.fullmatch(selector, ui.job) and not re.fullmatch(selector, MLFLOW_JOB)


@pytest.mark.tools  # promtool
def test_the_generated_configuration_passes_promtool(tmp_path):
    rules = write_rule_file(MONITORING / "prometheusrule.yaml", tmp_path / "rules.yaml")
    assert yaml.safe_load(rules.read_text()) == RULES  # the manifest's groups, unchanged
    targets = [
        ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-serving.yaml", "127.0.0.1:1"),
        ScrapeTarget.from_podmonitor(MONITORING / "podmonitor-serving.yaml", "127.0.0.1:2"),
        ScrapeTarget(MLFLOW_JOB, "127.0.0.1:3"),
    ]
    config = prometheus_config(targets, [rules], alertmanager="127.0.0.1:4")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["kserve-inference/disease-classifier"]["static_configs"] == [
        {"targets": ["127.0.0.1:1", "127.0.0.1:2"]}  # replicas of one job
    ]
    assert jobs["kserve-inference/disease-classifier"]["scrape_interval"] == "15s"
    fast = prometheus_config(targets, [rules], interval="1s")
    assert {j["scrape_interval"] for j in fast["scrape_configs"]} == {"1s"}
    assert fast["global"]["evaluation_interval"] == "1s"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_drift_thresholds_separate_normal_from_shifted_traffic(trained_model_dir, training_set):
    """What bench/drift_baseline.py measures, smaller: at the smallest window the alerts
    accept, every one of 300 windows of normal traffic stays below the threshold, and every
    shifted one is far above it."""
    from pipelines.local_stack.traffic import (
        normal_patients,
        shifted_patients,
        symptom_counts,
        top_diseases,
        total_variation,
    )
    from symptom_dx.config import DEFAULTS
    from symptom_dx.evaluation import pattern_split
    from symptom_dx.model import SymptomClassifier

    threshold, patients = drift_alert_limits("DiseaseClassifierInputDrift")
    model = SymptomClassifier.load(trained_model_dir)
    reference = model.reference
    split = pattern_split(training_set, DEFAULTS.test_fraction, DEFAULTS.split_seed)
    pool = normal_patients(split.test, k=3)
    ranked = top_diseases(model, pool)
    rng = np.random.default_rng(0)
    normal = []
    for _ in range(300):
        pick = rng.integers(0, len(pool), size=int(patients))
        normal.append(
            (
                total_variation(symptom_counts(pool[i] for i in pick), reference.symptom_share),
                total_variation(Counter(ranked[i] for i in pick), reference.disease_share),
            )
        )
    shifted = shifted_patients(int(patients), k=3, seed=0)
    far = (
        total_variation(symptom_counts(shifted), reference.symptom_share),
        total_variation(Counter(top_diseases(model, shifted)), reference.disease_share),
    )
    worst = np.max(normal, axis=0)
    assert (worst < threshold).all(), f"normal traffic reaches {worst} (threshold {threshold})"
    assert (np.asarray(far) > 2 * threshold).all(), far
