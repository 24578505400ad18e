"""The plain manifests: rendered by kustomize, validated against real schemas and tools.

No cluster runs here, so each object is checked the way an API server would check it:
CRD-backed kinds against the CRD's openAPIV3Schema (../shared/schemas/crds), core kinds with
kubernetes-validate; the rules with promtool; and the wiring between objects (selectors,
port names, metric names) against what our real servers expose.
"""

import functools
import json
import subprocess
from pathlib import Path

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from testkit import REPO

from operations.deploy import TEMPLATE_KEY, Release, inference_service
from pipelines.compile import KUSTOMIZATION
from symptom_dx import kaggle
from symptom_dx.knowledge import KNOWLEDGE_FILES
from symptom_dx.settings import DeploySettings

# kubectl (kustomize) renders every object the tests read; promtool checks the rules
pytestmark = pytest.mark.tools
CRDS = REPO.parent / "shared" / "schemas" / "crds"
EXAMPLE_RELEASE = Release(
    "7", "s3://symptom-dx-models/models/disease-classifier/run", "ab" * 32, "r"
)


def predictor(objects) -> dict:
    """The InferenceService `symptom-dx deploy` applies: the template, with a release."""
    template = yaml.safe_load(
        named(objects, "ConfigMap", "symptom-dx-predictor")["data"][TEMPLATE_KEY]
    )
    return inference_service(template, template["metadata"]["name"], EXAMPLE_RELEASE)


HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def tools(k8s_tools) -> Path:
    return k8s_tools


@pytest.fixture(scope="module")
def objects(rendered_manifests) -> list[dict]:
    return rendered_manifests


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def named(objects, kind, name):
    [obj] = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return obj


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """Read-only: the CRDs' openAPI schemas (megabytes of YAML, so parsed once, with libyaml)."""
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def test_kustomize_renders_every_piece(objects):
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Deployment",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PodMonitor",
            "PodMonitor",
            "PrometheusRule",
            "Service",
            "Service",
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "ServiceAccount",
            "ServingRuntime",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    )
    # No InferenceService: `symptom-dx deploy` makes it from the template with the champion.
    assert not by_kind(objects, "InferenceService")
    # Namespaces belong to terraform/ (or helm/platform/README.md), never to this app.
    assert not by_kind(objects, "Namespace")


def test_every_image_is_set_in_the_kustomization(objects):
    """One place to point the app at a registry: kustomization.yaml's images list."""
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    pinned = {f"{i.get('newName', i['name'])}:{i['newTag']}" for i in kustomization["images"]}
    used = set()
    for obj in objects:
        spec = obj.get("spec", {})
        containers = spec.get("containers") or spec.get("template", {}).get("spec", {}).get(
            "containers", []
        )
        used |= {c["image"] for c in containers}
    assert used == pinned


def unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Fields the API server would prune (strict field validation rejects them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = []
        for key, value in obj.items():
            if props is not None and key in props:
                out += unknown_fields(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += unknown_fields(value, extra, f"{path}.{key}")
            elif props is not None and path:  # metadata etc. at the top level are not listed
                out.append(f"{path}.{key}")
        return out
    if isinstance(obj, list) and "items" in schema:
        return [
            f
            for i, item in enumerate(obj)
            for f in unknown_fields(item, schema["items"], f"{path}[{i}]")
        ]
    return []


def test_crd_objects_match_their_schemas(objects):
    schemas = crd_schemas()
    checked = 0
    for obj in [*objects, predictor(objects)]:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            # The CRDs' patterns are Go regular expressions: validate instances only, as the
            # API server does, without checking the schema itself against Python's re.
            jsonschema.Draft7Validator(schemas[key]).validate(obj)
            assert unknown_fields(obj["spec"], schemas[key]["properties"]["spec"], "spec") == []
            checked += 1
    assert checked == 5


def test_core_objects_are_valid_kubernetes(objects):
    for obj in objects:
        if "/" not in obj["apiVersion"] or obj["apiVersion"].startswith("apps/"):
            kubernetes_validate.validate(obj, "1.33", strict=True)


def test_containers_run_as_non_root_without_capabilities(objects):
    runtime = by_kind(objects, "ServingRuntime")[0]["spec"]["containers"][0]
    pods = [d["spec"]["template"]["spec"] for d in by_kind(objects, "Deployment")]
    contexts = [runtime["securityContext"]] + [
        c["securityContext"] for p in pods for c in p["containers"]
    ]
    for ctx in contexts:
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
    assert runtime["securityContext"]["runAsNonRoot"] is True
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 1000  # the images' USER
        assert pod["automountServiceAccountToken"] is False
        # a read-only root needs a writable /tmp
        tmp = [m for c in pod["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp and {"name": tmp[0]["name"], "emptyDir": {}} in pod["volumes"]


def test_inference_service_uses_our_runtime_in_raw_mode(objects):
    template = named(objects, "ConfigMap", "symptom-dx-predictor")["data"][TEMPLATE_KEY]
    # no placeholder: deploy sets the champion's
    assert "storageUri" not in yaml.safe_load(template)["spec"]["predictor"]["model"]
    isvc = predictor(objects)
    runtime = by_kind(objects, "ServingRuntime")[0]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    assert model["storageUri"] == EXAMPLE_RELEASE.storage_uri
    assert model["args"] == [f"--model_sha256={EXAMPLE_RELEASE.model_sha256}"]
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "disease-classifier"


def flag(args: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def test_runtime_declares_the_ports_its_server_listens_on(objects):
    """KServe raw mode publishes ports[0] as Service port 80 and later ports as themselves."""
    runtime = by_kind(objects, "ServingRuntime")[0]
    container = runtime["spec"]["containers"][0]
    ports = [(p["name"], p["containerPort"]) for p in container["ports"]]
    http_port = int(flag(container["args"], "http_port"))
    grpc_port = int(flag(container["args"], "grpc_port"))
    assert ports == [("http1", http_port), ("grpc", grpc_port)]
    assert flag(container["args"], "bind_address") == "0.0.0.0"
    assert "grpc-v2" in runtime["spec"]["protocolVersions"]
    annotations = runtime["metadata"]["annotations"]
    assert int(annotations["prometheus.kserve.io/port"]) == http_port


def test_pod_monitors_select_the_pods_and_ports_that_exist(objects):
    serving, ui = sorted(by_kind(objects, "PodMonitor"), key=lambda o: o["metadata"]["name"])
    runtime_ports = {
        p["name"] for p in by_kind(objects, "ServingRuntime")[0]["spec"]["containers"][0]["ports"]
    }
    assert serving["spec"]["selector"]["matchLabels"] == {
        "serving.kserve.io/inferenceservice": "disease-classifier"
    }
    assert serving["spec"]["podMetricsEndpoints"][0]["port"] in runtime_ports
    pod = named(objects, "Deployment", "symptom-dx-ui")["spec"]["template"]
    assert ui["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert ui["spec"]["podMetricsEndpoints"][0]["port"] in {
        p["name"] for p in pod["spec"]["containers"][0]["ports"]
    }
    for monitor in (*by_kind(objects, "PodMonitor"), *by_kind(objects, "PrometheusRule")):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboard_config_map_is_labelled_for_grafana(objects):
    dashboards = [o for o in by_kind(objects, "ConfigMap") if "dashboard.json" in o["data"]]
    assert len(dashboards) == 1
    assert dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboards[0]["data"]["dashboard.json"])
    assert dashboard["uid"] == "symptom-dx" and len(dashboard["panels"]) >= 6


@pytest.fixture(scope="module")
def rules_file(objects, tmp_path_factory) -> Path:
    rule = by_kind(objects, "PrometheusRule")[0]
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    (path.parent / "rules_test.yaml").write_text((HERE / "rules_test.yaml").read_text())
    return path


def test_promtool_checks_the_rules(rules_file):
    out = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_the_alerts(rules_file):
    out = subprocess.run(
        ["promtool", "test", "rules", "rules_test.yaml"],
        cwd=rules_file.parent,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_catches_a_misspelt_field(objects):
    isvc = predictor(objects)
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    schema = crd_schemas()[("serving.kserve.io/v1beta1", "InferenceService")]
    assert unknown_fields(isvc["spec"], schema["properties"]["spec"], "spec") == [
        "spec.predictor.model.storageURI"
    ]


@pytest.fixture(scope="module")
def mlflow(objects) -> dict:
    deployment = named(objects, "Deployment", "mlflow")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    return {"deployment": deployment, "pod": pod, "container": container, "args": args}


def test_mlflow_serves_the_tracking_uri_the_pipeline_uses(objects, mlflow):
    """MLFLOW_TRACKING_URI in symptom-dx-config names this Service, port and an allowed Host."""
    config = named(objects, "ConfigMap", "symptom-dx-config")["data"]
    uri = httpx.URL(config["MLFLOW_TRACKING_URI"])
    name, namespace = uri.host.split(".")[:2]
    service = named(objects, "Service", name)
    assert (
        service["metadata"]["namespace"]
        == namespace
        == mlflow["deployment"]["metadata"]["namespace"]
    )
    [port] = service["spec"]["ports"]
    assert port["port"] == uri.port == int(mlflow["args"]["port"])
    assert port["targetPort"] in {p["name"] for p in mlflow["container"]["ports"]}
    labels = mlflow["deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    allowed = mlflow["args"]["allowed-hosts"].split(",")
    assert f"{uri.host}:{uri.port}" in allowed  # the Host header the pipeline's client sends
    assert mlflow["args"]["host"] == "0.0.0.0"


def test_mlflow_keeps_artifacts_in_the_bucket_and_its_database_on_a_volume(objects, mlflow):
    config = named(objects, "ConfigMap", "symptom-dx-config")["data"]
    assert mlflow["args"]["artifacts-destination"] == (
        f"s3://{config['SYMPTOM_DX_BUCKET']}/mlflow-artifacts"
    )
    assert mlflow["container"]["image"] == "ghcr.io/symptom-dx/components:0.1.0"
    assert mlflow["container"]["command"] == ["mlflow", "server"]
    backend = mlflow["args"]["backend-store-uri"]
    assert backend.startswith("sqlite:////")
    db_dir = str(Path(backend.removeprefix("sqlite:///")).parent)
    [mount] = [m for m in mlflow["container"]["volumeMounts"] if m["mountPath"] == db_dir]
    [volume] = [v for v in mlflow["pod"]["volumes"] if v["name"] == mount["name"]]
    claim = named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["metadata"]["namespace"] == "mlflow"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # sqlite on a ReadWriteOnce volume: one pod, never two during a rollout
    assert mlflow["deployment"]["spec"]["replicas"] == 1
    assert mlflow["deployment"]["spec"]["strategy"]["type"] == "Recreate"
    assert mlflow["pod"]["securityContext"]["fsGroup"] == 1000  # the volume is writable by uid 1000


def test_mlflow_takes_bucket_access_from_the_secret_or_pod_identity(objects, mlflow):
    """MinIO mode: terraform's Secret (with MLFLOW_S3_ENDPOINT_URL); S3 mode: no Secret, and the
    service account terraform binds through EKS Pod Identity (namespace mlflow, name mlflow)."""
    assert mlflow["container"]["envFrom"] == [
        {"secretRef": {"name": "model-store-credentials", "optional": True}},
        {"secretRef": {"name": "mlflow-auth"}},  # the registry's admin: never optional
    ]
    assert mlflow["pod"]["serviceAccountName"] == "mlflow"
    account = named(objects, "ServiceAccount", "mlflow")
    assert account["metadata"]["namespace"] == "mlflow"
    env = {e["name"]: e.get("value") for e in mlflow["container"].get("env", [])}
    assert "MLFLOW_S3_ENDPOINT_URL" not in env  # would override the Secret's endpoint
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_mlflow_probes_its_health_endpoint(mlflow):
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = mlflow["container"][probe]["httpGet"]
        assert get["path"] == "/health" and get["port"] == "http", probe
    resources = mlflow["container"]["resources"]
    assert resources["requests"] and resources["limits"]


@pytest.mark.integration
def test_readme_cluster_steps_match_the_manifests(objects):
    """The README's cluster recipe names the objects these manifests need and create."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Running on a cluster") :]
    section = section[: section.index("\n## ", 1)]
    # the UI's knowledge ConfigMap comes with the model (deploy writes it), not by hand
    ui = named(objects, "Deployment", "symptom-dx-ui")["spec"]["template"]["spec"]
    [knowledge] = [v["configMap"]["name"] for v in ui["volumes"] if "configMap" in v]
    assert knowledge == DeploySettings().knowledge_config_map
    assert "create configmap" not in section
    # symptom-dx-config comes from manifests/kubeflow/configmap.yaml, not by hand
    assert named(objects, "ConfigMap", "symptom-dx-config")
    # the served model comes from the deploy command, never from the manifests
    for command in ("symptom-dx deploy", "symptom-dx status", "symptom-dx rollback"):
        assert command in section
    assert "patch inferenceservice" not in section
    assert "kubectl apply -k manifests/" in section
    assert "kubectl apply -k manifests/overlays/aws-s3/" in section
    # training goes through Kubeflow Pipelines' API, with the data's pinned checksum and the
    # bucket the pipeline's ConfigMap names
    assert "symptom-dx pipeline upload" in section and "symptom-dx pipeline run" in section
    assert f"data_sha256={kaggle.sha256_pin('Training.csv')}" in section
    bucket = named(objects, "ConfigMap", "symptom-dx-config")["data"]["SYMPTOM_DX_BUCKET"]
    assert f"data_source=s3://{bucket}/" in section
    for table in KNOWLEDGE_FILES:
        assert table in section
    # the gRPC address the README gives is the port the runtime declares
    [grpc] = [
        p
        for p in by_kind(objects, "ServingRuntime")[0]["spec"]["containers"][0]["ports"]
        if p["name"] == "grpc"
    ]
    assert (
        f"disease-classifier-predictor.kserve-inference.svc.cluster.local:{grpc['containerPort']}"
        in section
    )


def test_network_policies_let_in_only_what_the_design_names(objects):
    """kserve-inference: nothing by default; the predictor from the UI and monitoring, the UI
    from monitoring. mlflow: only namespace kubeflow (the pipeline's pods), on MLflow's port."""
    policies = {p["metadata"]["name"]: p for p in by_kind(objects, "NetworkPolicy")}
    deny = policies["default-deny-ingress"]
    assert deny["metadata"]["namespace"] == "kserve-inference"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    predictor = policies["predictor"]["spec"]
    [selector] = predictor["podSelector"]["matchExpressions"]
    assert set(selector["values"]) == {"disease-classifier", "disease-classifier-candidate"}
    ui = named(objects, "Deployment", "symptom-dx-ui")["spec"]["template"]["metadata"]["labels"]
    sources = [peer for rule in predictor["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "symptom-dx-ui"}}} in sources
    assert ui["app.kubernetes.io/name"] == "symptom-dx-ui"
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in sources
        if "namespaceSelector" in peer
    }
    assert namespaces == {"monitoring"}
    mlflow = policies["mlflow"]["spec"]
    assert policies["mlflow"]["metadata"]["namespace"] == "mlflow"
    [rule] = mlflow["ingress"]
    assert rule["ports"] == [{"port": 5000, "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}}
    ]
