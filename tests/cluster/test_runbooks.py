"""The README's cluster runbooks ("Runbooks: operating the cluster"), each block run exactly as
written, in order: promote, roll back, upgrade the model server image, rotate MLflow's
credentials, destroy. A client polls the predictor through every change to what serves it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import httpx
import pytest
from kube import KUBECONFIG, KUBECTL, Poller, get, kubectl, script
from test_application import (
    ISVC,
    NS,
    poll_body,
    predictor_url,
    registry,
    retrain_and_register,
    rollout_poller,
    storage_uri,
)
from testkit import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

README = REPO / "README.md"


def runbook(name: str) -> str:
    """The bash block under ``<!-- runbook: name -->`` in the README."""
    match = re.search(
        rf"<!-- runbook: {re.escape(name)} -->\s*```bash\n(.*?)```", README.read_text(), re.S
    )
    assert match, f"README.md has no runbook {name!r}"
    return match.group(1)


def run(app, name: str, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(REPO / ".venv" / "bin"), str(KUBECTL.parent), os.environ["PATH"]])
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runbook(name)],
        env=app.env(PATH=path, KUBECONFIG=str(KUBECONFIG), SYMPTOM_DX_DEPLOY_TIMEOUT="300", **env),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, f"runbook {name} failed:\n{out.stdout[-2000:]}{out.stderr[-3000:]}"
    return out


def test_promote_and_roll_back(app, served, data_dir, report):
    app.need_bucket()
    before = storage_uri()
    version = retrain_and_register(app, data_dir)
    with rollout_poller() as poller:
        promoted = run(app, "promote", VERSION=version)
        assert f'"version": "{version}"' in promoted.stdout  # symptom-dx status
        run(app, "rollback")
    assert storage_uri() == before
    if poller is not None:
        assert poller.failures == [], poller.failures[:5]
        report["runbook_promote_rollback"] = {"requests": poller.sent, "failed": 0}


@pytest.mark.local_cluster(
    reason="tags the serving image anew with docker and loads it into the node's containerd; on "
    "yours push a new tag (make images REGISTRY=... TAG=... PUSH=1) and run the runbook"
)
def test_upgrade_the_model_server_image(app, served, cluster, tmp_path, report):
    """A new serving image (here: the same build under a new tag, loaded into the node) set
    in the images list and applied: the predictor's pods roll, the model stays."""
    upgraded = cluster["serving"].rsplit(":", 1)[0] + ":upgrade-check"
    subprocess.run(["docker", "tag", cluster["serving"], upgraded], check=True)
    script("load-image.sh", upgraded)
    copy = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", copy)
    overlay = copy / "overlays" / "upgrade"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ../local\n"
        f"images:\n  - name: {cluster['serving'].rsplit(':', 1)[0]}\n"
        f"    newTag: {upgraded.rsplit(':', 1)[1]}\n"
    )
    before = storage_uri()
    with Poller(predictor_url(), poll_body()) as poller:
        out = run(app, "upgrade-server-image", MANIFESTS=str(overlay))
    assert "already serves" in out.stderr
    pods = get("pods", namespace=NS)["items"]
    images = {
        c["image"]
        for p in pods
        if p["metadata"]["labels"].get("serving.kserve.io/inferenceservice") == ISVC
        # the rollout is done; a replaced pod may still be in its termination grace period
        and "deletionTimestamp" not in p["metadata"]
        for c in p["spec"]["containers"]
    }
    assert images == {upgraded}
    assert storage_uri() == before
    assert poller.failures == [], poller.failures[:5]
    report["runbook_upgrade_server_image"] = {"requests": poller.sent, "failed": 0}
    # back to the image the manifests name, for what follows
    kubectl("apply", "-k", str(app.manifests))
    kubectl("-n", NS, "rollout", "status", f"deploy/{ISVC}-predictor", "--timeout=300s")


def test_rotate_mlflow_credentials(app, served):
    old = app.mlflow_user
    out = run(app, "rotate-mlflow-credentials")
    assert out.returncode == 0
    import base64

    secret = get("secret", "mlflow-credentials", "kubeflow")["data"]
    new = base64.b64decode(secret["MLFLOW_TRACKING_PASSWORD"]).decode()
    assert new != old[1]
    check = f"{app.mlflow_url}/api/2.0/mlflow/registered-models/get"
    params = {"name": "disease-classifier"}
    assert httpx.get(check, params=params, auth=old, timeout=10).status_code == 401
    assert httpx.get(check, params=params, auth=(old[0], new), timeout=10).status_code == 200
    app.mlflow_user = (old[0], new)
    registry(app)  # the client of later tests uses the new password
    mlflow_auth = get("secret", "mlflow-auth", "mlflow")["data"]
    assert base64.b64decode(mlflow_auth["MLFLOW_AUTH_ADMIN_PASSWORD"]).decode() == new


@pytest.mark.local_cluster(
    reason="removes the application from the cluster it checks; on yours run the destroy "
    "runbook by hand when you mean to"
)
def test_destroy(app, served):
    run(app, "destroy", MANIFESTS=str(app.manifests))
    assert get("inferenceservice", ISVC, NS, check=False) == {}
    for kind, name, namespace in (
        ("deployment", "mlflow", "mlflow"),
        ("deployment", "symptom-dx-ui", NS),
        ("servingruntime", "symptom-dx-runtime", NS),
        ("configmap", "symptom-dx-predictor", NS),
    ):
        assert get(kind, name, namespace, check=False) == {}, (kind, name)
    assert not [
        p
        for p in get("pods", namespace=NS)["items"]
        if p["metadata"].get("deletionTimestamp") is None
    ]
