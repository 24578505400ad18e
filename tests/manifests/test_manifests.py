"""The plain manifests: rendered by kustomize, validated against real schemas and tools.

No cluster runs here, so each object is checked the way an API server would check it:
CRD-backed kinds against the CRD's openAPIV3Schema (../shared/schemas/crds), core kinds with
kubernetes-validate; the rules with promtool; and the wiring between objects (selectors,
port names, metric names) against what our real servers expose.
"""

import json
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from testkit import REPO

CRDS = REPO.parent / "shared" / "schemas" / "crds"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def tools() -> Path:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "k8s-tools.sh")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def objects(tools) -> list[dict]:
    rendered = subprocess.run(
        [str(tools / "kubectl"), "kustomize", str(REPO / "manifests")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
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
            "Deployment",
            "InferenceService",
            "PodMonitor",
            "PodMonitor",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServingRuntime",
        ]
    )


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
    for obj in objects:
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
    deployment = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    for ctx in (runtime["securityContext"], deployment["containers"][0]["securityContext"]):
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["allowPrivilegeEscalation"] is False
    assert runtime["securityContext"]["runAsNonRoot"] is True
    assert deployment["securityContext"]["runAsNonRoot"] is True


def test_inference_service_uses_our_runtime_in_raw_mode(objects):
    isvc = by_kind(objects, "InferenceService")[0]
    runtime = by_kind(objects, "ServingRuntime")[0]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    assert model["storageUri"].startswith("s3://")
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
    pod = by_kind(objects, "Deployment")[0]["spec"]["template"]
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
    isvc = json.loads(json.dumps(by_kind(objects, "InferenceService")[0]))
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    schema = crd_schemas()[("serving.kserve.io/v1beta1", "InferenceService")]
    assert unknown_fields(isvc["spec"], schema["properties"]["spec"], "spec") == [
        "spec.predictor.model.storageURI"
    ]
