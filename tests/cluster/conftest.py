"""The application on a real Kubernetes: the local single-node one of scripts/cluster/ unless
KUBECONFIG names another (kube.py; README, "Check a cluster of your own").

On the local cluster: the cluster up, KServe v0.16.0, MinIO and kube-prometheus-stack (as
terraform installs it) in it, our images loaded, what terraform/ would provide (namespaces,
Secrets, the bucket, a volume for MLflow), then `kubectl apply -k manifests/overlays/local`, and
a champion trained by the pipeline and served by its deploy step. Only the node's own addresses
are used: the host routes the cluster's pod and service ranges into the node's network
namespace, MLflow is reached by `kubectl port-forward` on 127.0.0.1.

On another cluster nothing is installed, created or deleted: the platform and the application
are the operator's (README, "Running on a cluster"), the tests read what they need from it and
reach its Services through port-forwards; the tests marked local_cluster are skipped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kube import (
    KUBECONFIG,
    LOCAL,
    apply,
    close_forwards,
    describe_target,
    get,
    kubectl,
    port_forward,
    script,
    select_target,
    service_address,
    service_url,
    state_path,
    wait_for,
)
from testkit import REPO, cluster_setting

from pipelines.compile import image_targets

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

# the application's namespaces, made anew each session; "monitoring" is kube-prometheus-stack's,
# which the cluster fixture installs (the application adds its dashboard ConfigMap there)
NAMESPACES = ("kubeflow", "mlflow", "kserve-inference")
BUCKET = "symptom-dx-models"  # manifests/kubeflow/configmap.yaml and mlflow's destination
MINIO = "minio.minio.svc.cluster.local:9000"
NS = "kserve-inference"  # where the application serves (symptom_dx.settings.DeploySettings)
ISVC = "disease-classifier"  # the served InferenceService


def pytest_configure(config: pytest.Config) -> None:
    # A missing kubeconfig or a cluster that does not answer is one line before anything runs,
    # not the same error under every test; --collect-only asks no cluster.
    problem = select_target(reach=not config.option.collectonly)
    if problem:
        raise pytest.UsageError(problem)


def pytest_report_header() -> str:
    return f"cluster: {describe_target()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if LOCAL:
        return
    for item in items:
        mark = item.get_closest_marker("local_cluster")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason=f"local cluster only: {mark.kwargs['reason']}"))


@pytest.fixture(scope="session", autouse=True)
def _close_forwards():
    yield
    close_forwards()


@dataclass
class App:
    """What the tests need to talk to the application."""

    s3_env: dict[str, str]
    mlflow_user: tuple[str, str]
    manifests: Path  # the kustomization the application is applied from
    mlflow_url: str = ""
    no_bucket: str = ""  # why this machine cannot write the model bucket ("" if it can)
    extra: dict = field(default_factory=dict)

    def bucket(self):
        """A client of the model bucket, as this machine reaches it (the project's own)."""
        from symptom_dx.settings import S3Settings
        from symptom_dx.storage import ObjectStore

        return ObjectStore(S3Settings(**self.s3_env)).client

    def need_bucket(self) -> None:
        """Skip the test unless this machine can write model folders into the bucket."""
        if self.no_bucket:
            pytest.skip(self.no_bucket)

    def env(self, **more: str) -> dict[str, str]:
        """The environment of a host-side client (pipeline, symptom-dx) of this cluster."""
        return {
            **os.environ,
            **self.s3_env,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": self.mlflow_user[0],
            "MLFLOW_TRACKING_PASSWORD": self.mlflow_user[1],
            "KUBECONFIG": str(KUBECONFIG),
            **more,
        }


def secret(namespace: str, name: str, data: dict[str, str], annotations: dict | None = None):
    apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "stringData": data,
        }
    )


# The tests reach the predictor (REST, gRPC) and the UI through their Services from the host, as
# a load balancer or an ingress would on EKS; the application's policies let in only the UI and
# monitoring, so this one, the tests' own, lets in the host's end of the node's link as well.
TEST_HOST_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "test-host", "namespace": "kserve-inference"},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": f"{cluster_setting('HOST_IP')[0]}/32"}}],
                "ports": [{"port": p, "protocol": "TCP"} for p in (8080, 8081, 7860)],
            }
        ],
    },
}

# helm's output of a first install as upstream documents it, made on this session's fresh cluster
FIRST_INSTALL: dict[str, str] = {}

REPORT = REPO / "test-artifacts" / "cluster.json"


@pytest.fixture(scope="session")
def report():
    """What the operate issue asks to report (requests polled through each change, timings),
    kept in test-artifacts/cluster.json."""
    figures: dict = {}
    yield figures
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def cluster():
    """Our images' references. Local: the cluster, KServe, MinIO and kube-prometheus-stack up
    (idempotent), NetworkPolicies enforced (kube-network-policies), our four images in the node.
    Another cluster: nothing installed, what the application needs checked to be there."""
    images = image_targets()
    if not LOCAL:
        check_platform()
        return images
    missing = [
        r
        for r in images.values()
        if subprocess.run(["docker", "image", "inspect", r], capture_output=True).returncode
    ]
    if missing:
        pytest.fail(f"images not built: {', '.join(missing)}; run `make images`")
    script("build.sh", "--with-kserve")
    script("up.sh")
    # terraform's order: kube-prometheus-stack (its CRDs back the others' ServiceMonitors), then
    # cert-manager and KServe
    script("monitoring.sh", "install")
    serving = {"STORAGE_INITIALIZER_IMAGE": images["storage-initializer"]}
    if not get("deployment", "kserve-controller-manager", "kserve", check=False):
        FIRST_INSTALL["kserve"] = script("kserve.sh", "race", env=serving)
    script("kserve.sh", "install", env=serving)
    script("load-image.sh", *images.values())
    script("netpol.sh", "install")
    return images


# What the suite needs of a cluster it does not install (README, "Running on a cluster"):
# the platform's APIs, the application's namespaces, and what terraform writes into them.
PLATFORM_APIS = (
    "inferenceservices.serving.kserve.io",
    "prometheusrules.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
)


def check_platform() -> None:
    from pipelines.disease_training_pipeline import CONFIG_MAP, MLFLOW_SECRET, S3_SECRET

    wanted = [
        *(("crd", name, "") for name in PLATFORM_APIS),
        *(("namespace", name, "") for name in NAMESPACES),
        ("secret", MLFLOW_SECRET, "kubeflow"),
        ("secret", S3_SECRET, "kubeflow"),
        ("configmap", CONFIG_MAP, "kubeflow"),
    ]
    missing = [
        f"{kind} {namespace + '/' if namespace else ''}{name}"
        for kind, name, namespace in wanted
        if not get(kind, name, namespace, check=False)
    ]
    if missing:
        pytest.fail(
            f"{describe_target()} has no {', '.join(missing)}: install the platform and the "
            "application first (README, Running on a cluster)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kserve_first_install(cluster) -> str:
    """What helm said installing KServe's chart as upstream documents it (no post-renderer)."""
    if "kserve" not in FIRST_INSTALL:
        pytest.skip("KServe was installed before this session (a kept cluster): no first install")
    return FIRST_INSTALL["kserve"]


@pytest.fixture(scope="session")
def app(cluster):
    """The application, with MLflow ready and reached through a port-forward."""
    app = fresh_local_app() if LOCAL else installed_app()
    kubectl("-n", "mlflow", "rollout", "status", "deploy/mlflow", "--timeout=300s")
    with port_forward("mlflow", "svc/mlflow", 5000) as mlflow_url:
        wait_for(lambda: _health(mlflow_url), 60, "MLflow through the port-forward")
        app.mlflow_url = mlflow_url
        yield app


def minio_address() -> str:
    """host:port of the cluster's MinIO (MINIO, terraform's address), as this machine reaches it."""
    host, port = MINIO.rsplit(":", 1)
    name, namespace = host.split(".")[:2]
    return service_address(namespace, name, int(port))


def fresh_local_app() -> App:
    """The application applied from manifests/overlays/local on a clean slate (an earlier
    session's namespaces, volume and bucket contents are removed first)."""
    kubectl("delete", "namespace", *NAMESPACES, "--ignore-not-found", "--timeout=300s")
    kubectl("delete", "pv", "mlflow-data-local", "--ignore-not-found", "--timeout=120s")
    for namespace in NAMESPACES:
        kubectl("create", "namespace", namespace)
    root = secret_data("minio", "minio-root-credentials")
    user, password = root["rootUser"], root["rootPassword"]
    minio = minio_address()

    from minio import Minio

    client = Minio(minio, user, password, secure=False)
    if client.bucket_exists(BUCKET):
        from minio.deleteobjects import DeleteObject

        stale = [DeleteObject(o.object_name) for o in client.list_objects(BUCKET, recursive=True)]
        for error in client.remove_objects(BUCKET, stale):
            raise AssertionError(f"cannot empty {BUCKET}: {error}")
    else:
        client.make_bucket(BUCKET)
    store = {
        "AWS_ACCESS_KEY_ID": user,
        "AWS_SECRET_ACCESS_KEY": password,
        "AWS_ENDPOINT_URL": f"http://{MINIO}",
        "MLFLOW_S3_ENDPOINT_URL": f"http://{MINIO}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "S3_VERIFY_SSL": "0",
        "S3_USE_HTTPS": "0",
    }
    kserve_s3 = {  # what terraform/modules/platform/storage.tf annotates
        "serving.kserve.io/s3-endpoint": MINIO,
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-verifyssl": "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    for namespace in ("kubeflow", "mlflow", "kserve-inference"):
        secret(namespace, "model-store-credentials", store, kserve_s3)
    mlflow_password = secrets.token_urlsafe(24)
    admin = "symptom-dx-admin"
    secret(
        "mlflow",
        "mlflow-auth",
        {
            "MLFLOW_AUTH_ADMIN_USERNAME": admin,
            "MLFLOW_AUTH_ADMIN_PASSWORD": mlflow_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
        },
    )
    secret(
        "kubeflow",
        "mlflow-credentials",
        {"MLFLOW_TRACKING_USERNAME": admin, "MLFLOW_TRACKING_PASSWORD": mlflow_password},
    )
    # KFP's service account, which the deploy step's RoleBinding names
    kubectl("create", "serviceaccount", "pipeline-runner", "-n", "kubeflow", check=False)
    # a volume for MLflow's claim (EKS gives it gp3; this cluster has no provisioner)
    volume = state_path("volumes", "mlflow")
    subprocess.run(["rm", "-rf", str(volume)], check=True)
    volume.mkdir(parents=True)
    volume.chmod(0o777)
    apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "mlflow-data-local"},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "mlflow", "name": "mlflow-data"},
                "hostPath": {"path": str(volume), "type": "Directory"},
            },
        }
    )
    manifests = REPO / "manifests" / "overlays" / "local"
    kubectl("apply", "-k", str(manifests))
    apply(TEST_HOST_POLICY)
    s3_env = {**store, "AWS_ENDPOINT_URL": f"http://{minio}", "SYMPTOM_DX_BUCKET": BUCKET}
    s3_env["MLFLOW_S3_ENDPOINT_URL"] = s3_env["AWS_ENDPOINT_URL"]
    return App(s3_env, (admin, mlflow_password), manifests)


def installed_app() -> App:
    """The application as its operator installed it, read and not changed: MLflow's user from
    the Secret the pipeline reads, the bucket from its ConfigMap; in MinIO mode the keys
    terraform wrote and MinIO through a port-forward, with Amazon S3 (the Secret's keys empty)
    this machine's own AWS keys. The manifests: APP_MANIFESTS, else the kustomization of that
    storage mode (README, Running on a cluster, step 4)."""
    from pipelines.disease_training_pipeline import CONFIG_MAP, MLFLOW_SECRET, S3_SECRET

    mlflow = secret_data("kubeflow", MLFLOW_SECRET)
    store = secret_data("kubeflow", S3_SECRET)
    config = get("configmap", CONFIG_MAP, "kubeflow")["data"]
    bucket = config["SYMPTOM_DX_BUCKET"]
    s3_env = {"SYMPTOM_DX_BUCKET": bucket, "AWS_DEFAULT_REGION": config["AWS_DEFAULT_REGION"]}
    no_bucket = ""
    if store.get("AWS_ACCESS_KEY_ID"):
        endpoint = f"http://{minio_address()}"
        s3_env |= {key: store[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        s3_env |= {"AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
        manifests = REPO / "manifests"
    else:
        manifests = REPO / "manifests" / "overlays" / "aws-s3"
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            no_bucket = (
                f"writes model folders into s3://{bucket} from this machine: export "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of an IAM user that may write it"
            )
    manifests = Path(os.environ.get("APP_MANIFESTS") or manifests).absolute()
    user = (mlflow["MLFLOW_TRACKING_USERNAME"], mlflow["MLFLOW_TRACKING_PASSWORD"])
    return App(s3_env, user, manifests, no_bucket=no_bucket)


def secret_data(namespace: str, name: str) -> dict[str, str]:
    data = get("secret", name, namespace)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def _health(url: str) -> bool:
    import httpx

    return httpx.get(f"{url}/health", timeout=3).status_code == 200


@pytest.fixture(scope="session")
def kfp(app) -> str:
    """Kubeflow Pipelines 2.14.3 in kubeflow (scripts/cluster/kfp.sh, on the fresh namespace
    the app fixture made): the address of its API server."""
    script("kfp.sh", "install", timeout=3600)
    return service_url("kubeflow", "ml-pipeline", 8888)


@pytest.fixture(scope="session")
def training_data(app, data_dir) -> str:
    """Training.csv and the knowledge tables in the bucket, as README's cluster recipe puts
    them; the pipeline's data_source."""
    from symptom_dx.knowledge import KNOWLEDGE_FILES

    client = app.bucket()
    for name in ("Training.csv", *KNOWLEDGE_FILES):
        client.fput_object(BUCKET, f"{DATA_PREFIX}/{name}", str(data_dir / name))
    return f"s3://{BUCKET}/{DATA_PREFIX}/Training.csv"


DATA_PREFIX = "datasets/kaggle"


def kfp_run(app, host: str, *params: str) -> tuple[subprocess.CompletedProcess, str]:
    """`symptom-dx pipeline run PARAMS --host HOST` (following the run: its progress on stderr,
    the final state on stdout), and the logs of the run's step pods."""
    out = subprocess.run(
        [sys.executable, "-m", "operations.cli", "pipeline", "run", *params, "--host", host],
        env=app.env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    run_id = run_id_of(out.stderr)
    return out, run_logs(run_id) if run_id else ""


def run_id_of(output: str) -> str:
    """The run's id, from the line `symptom-dx pipeline run` starts with ("" if none)."""
    found = re.search(r"^run (\S+) of ", output, re.M)
    return found.group(1) if found else ""


def run_logs(run_id: str) -> str:
    """The main containers' logs of a KFP run's pods (the steps' own output)."""
    return kubectl(
        "logs",
        "-n",
        "kubeflow",
        "-l",
        f"pipeline/runid={run_id}",
        "-c",
        "main",
        "--tail=-1",
        "--prefix",
        "--max-log-requests=20",
        check=False,
    )


@pytest.fixture(scope="session")
def champion(app, kfp, training_data):
    """The pipeline run by Kubeflow Pipelines on the local cluster (`symptom-dx pipeline run`),
    every step a pod in kubeflow as pipeline-runner, with its deploy step on: it registers
    version 1 and serves it. On fresh namespaces, so the first deploy creates what the deploy
    step writes (the knowledge ConfigMap) under that account's RBAC. (Another cluster serves
    what its operator deployed: served.)"""
    from symptom_dx import kaggle

    assert get("configmap", "symptom-dx-knowledge", NS, check=False) == {}
    out, logs = kfp_run(
        app,
        kfp,
        f"data_source={training_data}",
        f"data_sha256={kaggle.sha256_pin('Training.csv')}",
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:] + logs[-4000:]
    return out.stderr + out.stdout + logs


@pytest.fixture(scope="session")
def served(request, cluster) -> None:
    """The champion served by the InferenceService: on the local cluster the one this session's
    pipeline run trained and deployed (champion), on another the one its operator's pipeline
    deployed, Ready."""
    if LOCAL:
        request.getfixturevalue("champion")
        return

    def ready() -> bool:
        isvc = get("inferenceservice", ISVC, NS, check=False)
        conditions = {c["type"]: c["status"] for c in isvc.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True"

    wait_for(ready, 120, f"InferenceService {NS}/{ISVC} Ready (the pipeline deploys it)")
