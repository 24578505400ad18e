"""Kubeflow Pipelines runs our pipeline on the local cluster: uploaded and run with
`symptom-dx pipeline`, every step a pod in kubeflow as pipeline-runner (the driver injecting
symptom-dx-config and the Secrets, artifacts through KFP's object store, the steps reaching
MLflow and MinIO by in-cluster DNS), its metrics in ML Metadata, the gate honoured by a second
run, and a failing step failing the run with its one-line reason and nothing half-written."""

from __future__ import annotations

import json

import pytest
from conftest import BUCKET, ISVC, NS, kfp_run, run_id_of
from kube import get, kubectl, port_forward, wait_for
from testkit import REPO, chromium_page

from pipelines.client import pipeline_steps
from symptom_dx import kaggle

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(1800),
    pytest.mark.local_cluster(
        reason="installs Kubeflow Pipelines (scripts/cluster/kfp.sh) and trains version 1 on "
        "fresh namespaces; on yours run the pipeline as README, Running on a cluster, step 5 "
        "says"
    ),
]


def run_pods(run_id: str) -> list[dict]:
    pods = get("pods", namespace="kubeflow").get("items", [])
    return [p for p in pods if p["metadata"].get("labels", {}).get("pipeline/runid") == run_id]


def node(pod: dict) -> str:
    return pod["metadata"].get("annotations", {}).get("workflows.argoproj.io/node-name", "")


def test_every_step_ran_as_a_pod_of_pipeline_runner(champion):
    lines = champion.splitlines()
    for step in pipeline_steps():
        assert f"step {step}: SUCCEEDED" in lines, (
            f"{step} not reported SUCCEEDED:\n{champion[:3000]}"
        )
    assert "state: SUCCEEDED" in lines and "SUCCEEDED" in lines
    pods = run_pods(run_id_of(champion))
    assert pods, "no pod carries the run's id"
    # Argo names each pod's node: <workflow>.root.<step>-driver, <workflow>.root.<step>.executor
    executors = [p for p in pods if node(p).endswith(".executor")]
    names = {node(p) for p in executors}
    for step in pipeline_steps():
        assert any(n.endswith(f".{step}.executor") for n in names), (step, names)
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "pipeline-runner"
        assert pod["status"]["phase"] == "Succeeded", pod["metadata"]["name"]
    # the train step's request fits the node; its limit lets it burst
    train = next(p for p in executors if node(p).endswith(".train-candidates.executor"))
    main = next(c for c in train["spec"]["containers"] if c["name"] == "main")
    assert main["resources"]["requests"]["cpu"] == "500m"
    assert main["resources"]["limits"]["cpu"] == "2"


def test_the_runs_metrics_are_in_ml_metadata(champion):
    """The evaluate step's metrics and classification metrics, as the dashboard reads them:
    from KFP's ML Metadata service, by the run's context (queried from a pod of the MLMD
    server's image, which carries the ml-metadata client)."""
    run_id = run_id_of(champion)
    query = f"""
import json
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
host = "metadata-grpc-service.kubeflow"
config = metadata_store_pb2.MetadataStoreClientConfig(host=host, port=8080)
store = metadata_store.MetadataStore(config)
context = store.get_context_by_type_and_name("system.PipelineRun", "{run_id}")
types = {{t.id: t.name for t in store.get_artifact_types()}}
out = {{}}
for artifact in store.get_artifacts_by_context(context.id):
    kind = types[artifact.type_id]
    if kind in ("system.Metrics", "system.ClassificationMetrics"):
        out.setdefault(kind, []).append(sorted(artifact.custom_properties))
print(json.dumps(out))
"""
    image = get("deployment", "metadata-grpc-deployment", "kubeflow")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    pod = "mlmd-query"
    kubectl("delete", "pod", pod, "-n", "kubeflow", "--ignore-not-found")
    kubectl(
        "run", pod, "-n", "kubeflow", "--restart=Never", f"--image={image}",
        "--image-pull-policy=Never", "--command", "--", "/opt/venv/bin/python", "-c", query,
    )  # fmt: skip
    try:
        kubectl("wait", "-n", "kubeflow", "--for=jsonpath={.status.phase}=Succeeded",
                f"pod/{pod}", "--timeout=120s")  # fmt: skip
        out = kubectl("logs", "-n", "kubeflow", pod)
    finally:
        kubectl("delete", "pod", pod, "-n", "kubeflow", "--wait=false", check=False)
    found = json.loads(out.strip().splitlines()[-1])
    assert found.get("system.Metrics"), found
    assert found.get("system.ClassificationMetrics"), found
    assert any("confusionMatrix" in props for props in found["system.ClassificationMetrics"])


def test_a_second_run_keeps_the_champion_and_changes_nothing_served(
    app, kfp, champion, training_data
):
    before = get("inferenceservice", ISVC, NS)
    out, logs = kfp_run(
        app, kfp, f"data_source={training_data}", f"data_sha256={kaggle.sha256_pin('Training.csv')}"
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + logs[-3000:]
    assert "champion stays" in logs, logs[-3000:]
    after = get("inferenceservice", ISVC, NS)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]


def test_a_failing_step_fails_the_run_with_its_reason_and_writes_nothing(
    app, kfp, champion, training_data
):
    client = app.bucket()

    def objects() -> set[str]:
        return {o.object_name for o in client.list_objects(BUCKET, recursive=True)}

    from test_application import registry

    versions = lambda: len(registry(app).search_model_versions(f"name='{ISVC}'"))  # noqa: E731
    before, registered = objects(), versions()
    out, logs = kfp_run(app, kfp, f"data_source={training_data}", f"data_sha256={'0' * 64}")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.splitlines()[-1] == "FAILED", out.stdout[-2000:]
    assert "step ingest-dataset: FAILED" in out.stderr.splitlines()
    reasons = [line for line in logs.splitlines() if "ingest: " in line and "sha256" in line]
    assert reasons, logs[-3000:]
    assert "Traceback" not in logs
    # the bucket: nothing new but what KFP itself keeps of the run (its logs and artifacts
    # under its own pipeline root live in KFP's object store, not in ours)
    assert objects() == before
    assert versions() == registered
    wait_for(
        lambda: get("inferenceservice", f"{ISVC}-candidate", NS, check=False) == {},
        10,
        "no candidate",
    )


# -- the dashboard ------------------------------------------------------------------------------
DASHBOARD_PNG = REPO / "test-artifacts" / "kfp-dashboard.png"


@pytest.fixture
def dashboard(kfp, tmp_path):
    """Headless Chromium on the dashboard (ml-pipeline-ui, built from the release's frontend/)
    through the operator's port-forward."""
    with (
        port_forward("kubeflow", "svc/ml-pipeline-ui", 80) as url,
        chromium_page(tmp_path / "chromium-profile", 1600, 30_000) as page,
    ):
        yield url, page


def test_the_dashboard_shows_the_pipeline_the_run_and_its_graph(champion, dashboard):
    url, page = dashboard
    page.goto(f"{url}/#/pipelines")
    page.get_by_text("disease-training").first.wait_for()
    page.goto(f"{url}/#/runs/details/{run_id_of(champion)}")
    for step in pipeline_steps():
        page.get_by_text(step, exact=True).first.wait_for()
    DASHBOARD_PNG.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(DASHBOARD_PNG), full_page=True)
    # the evaluate step's confusion matrix, read from ML Metadata through grpc-web
    page.get_by_text("confusion_matrix", exact=True).first.click()
    page.get_by_text("system.ClassificationMetrics", exact=True).first.wait_for()
    page.get_by_text("Visualization", exact=True).first.click()
    page.get_by_text("Confusion Matrix: confusion_matrix").first.wait_for()
    page.get_by_text("Hepatitis B", exact=True).first.wait_for()  # the diseases, as labels
    page.screenshot(path=str(DASHBOARD_PNG.with_name("kfp-dashboard-metrics.png")), full_page=True)
