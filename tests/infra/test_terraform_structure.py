"""Structural checks of terraform/ parsed with python-hcl2 (no providers needed)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml
from infra_tfparse import (
    TERRAFORM_DIR,
    blocks,
    deep_unq,
    dir_blocks,
    dir_locals,
    dir_resources,
    expr,
    parse,
    tf_dirs,
    tf_files,
    unq,
)

ENV_DIR = TERRAFORM_DIR / "envs" / "dev"
MODULES_DIR = TERRAFORM_DIR / "modules"
NETWORK_DIR = MODULES_DIR / "network"
CLUSTER_DIR = MODULES_DIR / "cluster"
PLATFORM_DIR = MODULES_DIR / "platform"

# Workloads that read or write the model bucket, and the service accounts they
# run as (must match manifests/, KFP and KServe conventions).
EXPECTED_BUCKET_WORKLOADS = {
    ("kserve-inference", "disease-classifier"),
    ("kubeflow", "pipeline-runner"),
    ("mlflow", "mlflow"),
}

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def rel(path: Path) -> str:
    return str(path.relative_to(TERRAFORM_DIR))


def test_layout_has_modules_and_dev_root() -> None:
    for directory in (NETWORK_DIR, CLUSTER_DIR, PLATFORM_DIR):
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (directory / name).is_file(), f"{rel(directory)}/{name} missing"
    for name in (
        "versions.tf",
        "providers.tf",
        "backend.tf",
        "main.tf",
        "vpc.tf",
        "eks.tf",
        "addons.tf",
        "variables.tf",
        "outputs.tf",
        "terraform.tfvars.example",
        "README.md",
    ):
        assert (ENV_DIR / name).is_file(), f"envs/dev/{name} missing"
    assert (TERRAFORM_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", tf_files(), ids=rel)
def test_every_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


@pytest.mark.parametrize("path", tf_files(), ids=rel)
def test_every_variable_is_typed_and_described(path: Path) -> None:
    for name, body in blocks(path, "variable"):
        assert "type" in body, f"{rel(path)}: variable {name} has no type"
        description = unq(body.get("description", ""))
        assert isinstance(description, str) and len(description) >= 10, (
            f"{rel(path)}: variable {name} needs a real description"
        )


# Root inputs the operator must set: no default can be safe for them.
REQUIRED_ROOT_VARIABLES = {"endpoint_public_access_cidrs"}


def test_root_variables_have_defaults_except_the_required_ones() -> None:
    variables = dir_blocks(ENV_DIR, "variable")
    assert variables
    missing = {name for name, body in variables.items() if "default" not in body}
    assert missing == REQUIRED_ROOT_VARIABLES, f"envs/dev variables without a default: {missing}"
    with (ENV_DIR / "terraform.tfvars.example").open(encoding="utf-8") as handle:
        example = hcl2.load(handle)
    assert set(example) >= REQUIRED_ROOT_VARIABLES, (
        "the example tfvars must set every required input"
    )


def test_no_cluster_api_cidr_default_opens_the_internet() -> None:
    for directory in (ENV_DIR, CLUSTER_DIR):
        body = dir_blocks(directory, "variable")["endpoint_public_access_cidrs"]
        assert "0.0.0.0/0" not in str(body.get("default", [])), rel(directory)
        assert body["nullable"] is False, rel(directory)
        assert len(body["validation"]) >= 2, rel(directory)
    with (ENV_DIR / "terraform.tfvars.example").open(encoding="utf-8") as handle:
        example = hcl2.load(handle)
    assert "0.0.0.0/0" not in str(example["endpoint_public_access_cidrs"])


@pytest.fixture(scope="module")
def endpoint_variables_root(tmp_path_factory) -> Path:
    """A provider-free root holding only the two endpoint variables of envs/dev.

    `terraform init` needs no download for it, so `terraform plan -var ...` runs the
    variables' real validation blocks offline.
    """
    text = (ENV_DIR / "variables.tf").read_text(encoding="utf-8")
    blocks_text = [
        re.search(rf'^variable "{name}" {{.*?^}}\n', text, re.S | re.M).group(0)
        for name in ("endpoint_public_access", "endpoint_public_access_cidrs")
    ]
    root = tmp_path_factory.mktemp("endpoint-vars")
    (root / "variables.tf").write_text("\n".join(blocks_text), encoding="utf-8")
    (root / "cli.tfrc").write_text("", encoding="utf-8")
    out = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=root,
        capture_output=True,
        text=True,
        env=terraform_env(root),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return root


def terraform_env(root: Path) -> dict[str, str]:
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(root / "cli.tfrc"), "TF_IN_AUTOMATION": "1"}


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (['endpoint_public_access_cidrs=["203.0.113.0/24"]'], True),
        (["endpoint_public_access=false", "endpoint_public_access_cidrs=[]"], True),
        ([], False),  # required: no default
        (['endpoint_public_access_cidrs=["0.0.0.0/0"]'], False),
        (['endpoint_public_access_cidrs=["::/0"]'], False),
        (["endpoint_public_access_cidrs=[]"], False),  # EKS would read [] as 0.0.0.0/0
        (['endpoint_public_access_cidrs=["my-office"]'], False),
    ],
)
def test_endpoint_cidr_validation_runs_in_terraform(
    endpoint_variables_root: Path, args: list[str], accepted: bool
) -> None:
    argv = ["terraform", "plan", "-input=false", "-no-color", "-lock=false"]
    argv += [item for arg in args for item in ("-var", arg)]
    out = subprocess.run(
        argv,
        cwd=endpoint_variables_root,
        capture_output=True,
        text=True,
        env=terraform_env(endpoint_variables_root),
    )
    assert (out.returncode == 0) is accepted, out.stdout + out.stderr


@pytest.mark.parametrize("path", tf_files(), ids=rel)
def test_every_output_is_described(path: Path) -> None:
    for name, body in blocks(path, "output"):
        assert unq(body.get("description", "")), f"{rel(path)}: output {name} undescribed"


@pytest.mark.parametrize("directory", tf_dirs(), ids=rel)
def test_versions_pin_terraform_and_providers(directory: Path) -> None:
    terraform_blocks = parse(directory / "versions.tf").get("terraform", [])
    assert terraform_blocks, f"{rel(directory)}/versions.tf has no terraform block"
    settings = terraform_blocks[0]
    assert unq(settings.get("required_version", "")), "required_version missing"
    providers = settings["required_providers"][0]
    for name, spec in providers.items():
        if name == "__is_block__":
            continue
        assert unq(spec.get("source", "")), f"{name}: no source"
        assert unq(spec.get("version", "")), f"{name}: no version constraint"


def all_module_calls() -> list[tuple[Path, str, dict]]:
    calls = []
    for path in tf_files():
        for name, body in blocks(path, "module"):
            calls.append((path, name, body))
    return calls


def test_registry_modules_are_pinned_to_exact_versions() -> None:
    registry = {}
    for path, name, body in all_module_calls():
        source = unq(body["source"])
        if source.startswith(("./", "../")):
            assert "version" not in body, f"{rel(path)}: local module {name} cannot take a version"
            continue
        version = unq(body.get("version", ""))
        assert EXACT_VERSION.match(version), (
            f"{rel(path)}: module {name} ({source}) must pin an exact version, got {version!r}"
        )
        registry[source] = version
    assert "terraform-aws-modules/vpc/aws" in registry
    assert "terraform-aws-modules/eks/aws" in registry
    assert registry["terraform-aws-modules/eks/aws"].startswith("21.")


def test_dev_root_calls_the_three_local_modules() -> None:
    modules = dir_blocks(ENV_DIR, "module")
    assert {unq(m["source"]) for m in modules.values()} == {
        "../../modules/network",
        "../../modules/cluster",
        "../../modules/platform",
    }


def test_vpc_spans_three_azs_with_private_public_subnets_and_nat() -> None:
    vpc = dir_blocks(NETWORK_DIR, "module")["vpc"]
    assert unq(vpc["source"]) == "terraform-aws-modules/vpc/aws"
    for key in ("private_subnets", "public_subnets", "intra_subnets"):
        assert "local.azs" in vpc[key], key
    assert vpc["enable_nat_gateway"] is True
    az_count = dir_blocks(NETWORK_DIR, "variable")["az_count"]
    assert az_count["default"] == 3
    assert dir_blocks(ENV_DIR, "variable")["az_count"]["default"] == 3


def eks_module() -> dict:
    return dir_blocks(CLUSTER_DIR, "module")["eks"]


def test_eks_uses_current_kubernetes_version_variable() -> None:
    eks = eks_module()
    assert expr(eks["kubernetes_version"]) == "var.kubernetes_version"
    default = unq(dir_blocks(ENV_DIR, "variable")["kubernetes_version"]["default"])
    major, minor = (int(x) for x in default.split("."))
    assert (major, minor) >= (1, 33), "pick a Kubernetes version in EKS standard support"
    assert unq(dir_blocks(CLUSTER_DIR, "variable")["kubernetes_version"]["default"]) == default


@pytest.mark.parametrize("group", ["system", "workload"])
def test_node_groups_are_defined_with_the_variables(group: str) -> None:
    node_groups = eks_module()["eks_managed_node_groups"]
    assert set(node_groups) == {"system", "workload"}
    body = node_groups[group]
    for attr in ("instance_types", "capacity_type", "min_size", "max_size", "desired_size"):
        assert expr(body[attr]) == f"var.{group}_node_group.{attr}", (group, attr)
    volume = body["block_device_mappings"]["xvda"]["ebs"]
    assert expr(volume["volume_size"]) == f"var.{group}_node_group.disk_size_gib"
    assert volume["encrypted"] is True


@pytest.mark.parametrize("directory", [CLUSTER_DIR, ENV_DIR], ids=rel)
def test_node_groups_default_to_on_demand(directory: Path) -> None:
    variables = dir_blocks(directory, "variable")
    for group in ("system_node_group", "workload_node_group"):
        default = deep_unq(variables[group]["default"])
        assert default["capacity_type"] == "ON_DEMAND", group
        assert default["min_size"] <= default["desired_size"] <= default["max_size"], group
        assert default["instance_types"], group


def test_workload_group_autoscales() -> None:
    default = deep_unq(dir_blocks(ENV_DIR, "variable")["workload_node_group"]["default"])
    assert default["max_size"] > default["min_size"]
    tags = eks_module()["eks_managed_node_groups"]["workload"]["tags"]
    assert "k8s.io/cluster-autoscaler/enabled" in {unq(k) for k in tags}
    releases = dir_resources(PLATFORM_DIR)
    assert ("helm_release", "cluster_autoscaler") in releases
    assert ("aws_eks_pod_identity_association", "cluster_autoscaler") in releases


def test_core_addons_and_ebs_csi_with_pod_identity() -> None:
    addons = eks_module()["addons"]
    assert {
        "vpc-cni",
        "kube-proxy",
        "coredns",
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
    } <= set(addons)
    association = addons["aws-ebs-csi-driver"]["pod_identity_association"][0]
    assert expr(association["role_arn"]) == "aws_iam_role.ebs_csi.arn"
    assert unq(association["service_account"]) == "ebs-csi-controller-sa"
    role = dir_resources(CLUSTER_DIR)[("aws_iam_role", "ebs_csi")]
    assert "pod_identity_trust" in role["assume_role_policy"]
    attachment = dir_resources(CLUSTER_DIR)[("aws_iam_role_policy_attachment", "ebs_csi")]
    assert "AmazonEBSCSIDriverPolicy" in attachment["policy_arn"]


def pod_identity_trust_principals(directory: Path) -> list[str]:
    doc = dir_resources(directory, "data")[("aws_iam_policy_document", "pod_identity_trust")]
    statement = doc["statement"][0]
    actions = [unq(a) for a in statement["actions"]]
    assert {"sts:AssumeRole", "sts:TagSession"} <= set(actions)
    return [unq(i) for p in statement["principals"] for i in p["identifiers"]]


@pytest.mark.parametrize("directory", [CLUSTER_DIR, PLATFORM_DIR], ids=rel)
def test_pod_identity_roles_trust_only_the_eks_pods_service(directory: Path) -> None:
    assert pod_identity_trust_principals(directory) == ["pods.eks.amazonaws.com"]


def test_every_bucket_workload_has_a_pod_identity_binding() -> None:
    workloads = deep_unq(dir_locals(PLATFORM_DIR)["bucket_workloads"])
    assert {
        (w["namespace"], w["service_account"]) for w in workloads.values()
    } == EXPECTED_BUCKET_WORKLOADS
    assert workloads["kserve-storage-initializer"]["access"] == "read"

    res = dir_resources(PLATFORM_DIR)
    association = res[("aws_eks_pod_identity_association", "bucket_access")]
    assert "local.bucket_workloads" in association["for_each"]
    assert expr(association["namespace"]) == "each.value.namespace"
    assert expr(association["service_account"]) == "each.value.service_account"
    assert expr(association["role_arn"]) == "aws_iam_role.bucket_access[each.key].arn"
    assert expr(association["cluster_name"]) == "var.cluster_name"

    role = res[("aws_iam_role", "bucket_access")]
    assert "local.bucket_workloads" in role["for_each"]
    assert "pod_identity_trust" in role["assume_role_policy"]
    policy = res[("aws_iam_role_policy", "bucket_access")]
    assert "bucket_access[each.key]" in policy["policy"]


def test_bucket_workload_service_accounts_exist_in_the_manifests() -> None:
    """Pod Identity binds by namespace/name: the app's service accounts must match exactly."""
    manifests = TERRAFORM_DIR.parent / "manifests"
    accounts = set()
    for path in manifests.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "ServiceAccount":
                accounts.add((doc["metadata"]["namespace"], doc["metadata"]["name"]))
    # kubeflow/pipeline-runner is created by the KFP install, not by our manifests
    assert accounts == EXPECTED_BUCKET_WORKLOADS - {("kubeflow", "pipeline-runner")}
    assert ("mlflow", "mlflow") in accounts


def test_bucket_policies_are_scoped_to_the_bucket_and_its_key() -> None:
    doc = dir_resources(PLATFORM_DIR, "data")[("aws_iam_policy_document", "bucket_access")]
    for statement in doc["statement"]:
        for resource in statement["resources"]:
            assert resource != '"*"', statement
            assert "aws_s3_bucket.models" in resource or "aws_kms_key.bucket" in resource


def test_minio_mode_gives_each_bucket_workload_its_secret() -> None:
    secret = dir_resources(PLATFORM_DIR)[("kubernetes_secret_v1", "model_store")]
    assert "local.bucket_workloads" in secret["for_each"]
    assert "each.value.namespace" in secret["metadata"][0]["namespace"]
    assert "random_password.minio_workload" in secret["data"]["AWS_SECRET_ACCESS_KEY"]


# KServe's storage initializer reads the S3 endpoint only from these annotations
# of the Secret attached to the predictor's service account (or from the global
# inferenceservice-config); kserve pkg/credentials/s3/s3_secret.go.
KSERVE_S3_ANNOTATIONS = {
    "serving.kserve.io/s3-endpoint",
    "serving.kserve.io/s3-usehttps",
    "serving.kserve.io/s3-verifyssl",
    "serving.kserve.io/s3-region",
}


@pytest.mark.parametrize("name", ["mlflow_auth", "mlflow_credentials"])
def test_mlflow_secrets_are_seeded_once_and_left_to_the_rotation_runbook(name: str) -> None:
    """MLflow keeps its admin password in its own user database after the first start; the
    README's rotation runbook changes it there and in both Secrets. An apply that wrote
    terraform's first password back would lock the pipeline out of the registry."""
    secret = dir_resources(PLATFORM_DIR)[("kubernetes_secret_v1", name)]
    assert "random_password.mlflow_admin.result" in str(secret["data"])
    assert [deep_unq(c) for c in secret["lifecycle"][0]["ignore_changes"]] == ["data"]
    readme = (TERRAFORM_DIR.parent / "README.md").read_text(encoding="utf-8")
    runbook = readme[readme.index("runbook: rotate-mlflow-credentials") :]
    runbook = runbook[: runbook.index("```\n\n")]
    namespace = unq(secret["metadata"][0]["namespace"]).split('"')[1]
    secret_name = unq(secret["metadata"][0]["name"])
    assert f"-n {namespace} patch secret {secret_name}" in runbook


def test_minio_secret_carries_the_kserve_s3_annotations() -> None:
    secret = dir_resources(PLATFORM_DIR)[("kubernetes_secret_v1", "model_store")]
    annotations = deep_unq(secret["metadata"][0]["annotations"])
    assert set(annotations) == KSERVE_S3_ANNOTATIONS
    locals_ = dir_locals(PLATFORM_DIR)
    # host:port, no scheme (KServe adds it from s3-usehttps); the same MinIO the data keys name
    assert expr(annotations["serving.kserve.io/s3-endpoint"]) == "local.minio_host"
    host = unq(locals_["minio_host"])
    assert re.fullmatch(r"minio\.minio\.svc\.cluster\.local:9000", host), host
    assert unq(locals_["minio_endpoint"]) == "http://${local.minio_host}"
    assert expr(secret["data"]["AWS_ENDPOINT_URL"]) == "local.minio_endpoint"
    assert annotations["serving.kserve.io/s3-usehttps"] == "0"
    assert annotations["serving.kserve.io/s3-verifyssl"] == "0"
    assert expr(annotations["serving.kserve.io/s3-region"]) == "var.region"


def test_plain_helm_recipe_annotates_the_secret_like_terraform() -> None:
    readme = (TERRAFORM_DIR.parent / "helm" / "platform" / "README.md").read_text(encoding="utf-8")
    recipe = readme[readme.index("create secret generic model-store-credentials") :]
    recipe = recipe[: recipe.index("done")]
    assert "annotate secret model-store-credentials" in recipe
    for key in KSERVE_S3_ANNOTATIONS:
        assert f"{key}=" in recipe, key
    assert "serving.kserve.io/s3-endpoint=minio.minio.svc.cluster.local:9000" in recipe
    assert "s3-usehttps=0" in recipe and "s3-verifyssl=0" in recipe


def test_storage_backend_is_a_validated_choice_defaulting_to_minio() -> None:
    module_var = dir_blocks(PLATFORM_DIR, "variable")["storage_backend"]
    assert unq(module_var["default"]) == "minio"
    condition = module_var["validation"][0]["condition"]
    assert '"minio"' in condition and '"s3"' in condition
    assert unq(dir_blocks(ENV_DIR, "variable")["storage_backend"]["default"]) == "minio"


def test_bucket_name_defaults_to_name_models() -> None:
    locals_ = dir_locals(ENV_DIR)
    assert "var.name}-models" in locals_["bucket_name"]
    assert unq(dir_blocks(ENV_DIR, "variable")["name"]["default"]) == "symptom-dx"


def test_s3_bucket_is_encrypted_versioned_private_and_tls_only() -> None:
    res = dir_resources(PLATFORM_DIR)
    for kind in (
        "aws_s3_bucket",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_policy",
    ):
        body = res[(kind, "models")]
        assert "local.use_s3" in body["count"], kind

    versioning = res[("aws_s3_bucket_versioning", "models")]["versioning_configuration"][0]
    assert unq(versioning["status"]) == "Enabled"

    sse = res[("aws_s3_bucket_server_side_encryption_configuration", "models")]["rule"][0]
    default = sse["apply_server_side_encryption_by_default"][0]
    assert unq(default["sse_algorithm"]) == "aws:kms"
    assert res[("aws_kms_key", "bucket")]["enable_key_rotation"] is True

    pab = res[("aws_s3_bucket_public_access_block", "models")]
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert pab[flag] is True, flag

    policy = dir_resources(PLATFORM_DIR, "data")[("aws_iam_policy_document", "bucket")]
    tls = next(s for s in policy["statement"] if unq(s["sid"]) == "DenyInsecureTransport")
    assert unq(tls["effect"]) == "Deny"
    condition = tls["condition"][0]
    assert unq(condition["variable"]) == "aws:SecureTransport"
    assert [unq(v) for v in condition["values"]] == ["false"]


STATIC_SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"ASIA[0-9A-Z]{16}"),
    re.compile(r"(?i)aws_secret_access_key\s*=\s*\"[^\"$]+\""),
    re.compile(r"(?i)\b(access_key|secret_key|token)\s*=\s*\"[^\"$]+\""),
    # A password-like key set to a literal (references such as
    # random_password.x.result or ${...} are fine).
    re.compile(
        r"(?i)\b(password|secret_?key|root_?password|admin_?password)\s*[:=]\s*\"?"
        r"(?!\$\{|random_password\.|var\.|local\.)[A-Za-z0-9+/=_.-]{8,}"
    ),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def scanned_files() -> list[Path]:
    files = [p for p in TERRAFORM_DIR.rglob("*") if p.is_file() and ".terraform" not in p.parts]
    files += [p for p in (TERRAFORM_DIR.parent / "helm" / "platform").rglob("*") if p.is_file()]
    return sorted(files)


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: p.name)
def test_no_static_credentials(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern in STATIC_SECRET_PATTERNS:
        match = pattern.search(text)
        assert not match, f"{path}: looks like a static credential: {match.group(0)!r}"


def test_aws_provider_takes_credentials_from_the_environment() -> None:
    for path in tf_files():
        for entry in parse(path).get("provider", []):
            for name, body in entry.items():
                if unq(name) != "aws":
                    continue
                for forbidden in (
                    "access_key",
                    "secret_key",
                    "token",
                    "profile",
                    "shared_credentials_files",
                ):
                    assert forbidden not in body, f"{rel(path)}: aws provider sets {forbidden}"


def test_remote_state_is_documented_and_commented_in() -> None:
    text = (ENV_DIR / "backend.tf").read_text(encoding="utf-8")
    assert '#   backend "s3" {' in text
    assert "use_lockfile = true" in text
    assert "encrypt      = true" in text
    for path in tf_files(ENV_DIR):
        for settings in parse(path).get("terraform", []):
            assert "backend" not in settings, (
                f"{rel(path)}: backend must stay commented until bootstrapped"
            )


def test_tfvars_example_only_sets_declared_variables() -> None:
    with (ENV_DIR / "terraform.tfvars.example").open(encoding="utf-8") as handle:
        values = hcl2.load(handle)
    declared = set(dir_blocks(ENV_DIR, "variable"))
    assert {k for k in values if not k.startswith("__")} <= declared


def test_required_outputs_exist() -> None:
    outputs = dir_blocks(ENV_DIR, "output")
    for name in (
        "cluster_name",
        "cluster_endpoint",
        "update_kubeconfig_command",
        "bucket_name",
        "bucket_access_role_arns",
        "ebs_csi_role_arn",
        "cluster_autoscaler_role_arn",
    ):
        assert name in outputs, name
    assert "aws eks update-kubeconfig" in outputs["update_kubeconfig_command"]["value"]
    assert outputs["grafana_admin_password"]["sensitive"] is True


def test_platform_releases_use_pinned_variables_and_repo_values_files(repo_root: Path) -> None:
    res = dir_resources(PLATFORM_DIR)
    releases = {name: body for (kind, name), body in res.items() if kind == "helm_release"}
    assert set(releases) == {
        "kube_prometheus_stack",
        "cert_manager",
        "kserve_crd",
        "kserve",
        "minio",
        "cluster_autoscaler",
    }
    variables = dir_blocks(PLATFORM_DIR, "variable")
    for name, body in releases.items():
        version_var = expr(body["version"])
        assert version_var.startswith("var."), f"{name}: chart version must come from a variable"
        assert "default" in variables[version_var.removeprefix("var.")], name
        for value in body.get("values", []):
            for match in re.finditer(r"helm_values_dir}/([\w.-]+\.yaml)", value):
                assert (repo_root / "helm" / "platform" / match.group(1)).is_file(), match.group(1)
    assert unq(releases["kube_prometheus_stack"]["name"]) == "kube-prometheus-stack"
    assert "monitoring" in releases["kube_prometheus_stack"]["namespace"]
    assert "local.use_minio" in releases["minio"]["count"]


def test_env_and_module_defaults_agree_on_versions() -> None:
    env_vars = dir_blocks(ENV_DIR, "variable")
    module_vars = dir_blocks(PLATFORM_DIR, "variable")
    for name in (
        "cert_manager_version",
        "kserve_version",
        "kube_prometheus_stack_version",
        "minio_chart_version",
        "cluster_autoscaler_chart_version",
        "cluster_autoscaler_image_tag",
        "kfp_version",
    ):
        assert unq(env_vars[name]["default"]) == unq(module_vars[name]["default"]), name
    ca_minor = (
        unq(env_vars["cluster_autoscaler_image_tag"]["default"]).lstrip("v").rsplit(".", 1)[0]
    )
    assert ca_minor == unq(env_vars["kubernetes_version"]["default"])


def test_kubeflow_pipelines_install_is_pinned_to_a_release_ref() -> None:
    kfp = dir_resources(PLATFORM_DIR)[("terraform_data", "kubeflow_pipelines")]
    commands = " ".join(
        body["command"]
        for p in kfp["provisioner"]
        for kind, body in p.items()
        if unq(kind) == "local-exec"
    )
    assert 'kubeflow-pipelines/install.sh" "${self.input.version}"' in commands
    default = unq(dir_blocks(PLATFORM_DIR, "variable")["kfp_version"]["default"])
    assert EXACT_VERSION.match(default)


def test_kubeflow_pipelines_install_drops_the_cache_deployer(tmp_path) -> None:
    """install.sh applies upstream's manifests at the release tag with our without-cache
    components (a kubectl stand-in records the kustomizations it is given)."""
    record = tmp_path / "applied"
    record.mkdir()
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    keep = f'cp "$3/kustomization.yaml" "{record}/$(ls {record} | wc -l)"'
    fake.write_text(f'#!/bin/bash\n[ "$1 $2" = "apply -k" ] && {keep}\nexit 0\n')
    fake.chmod(0o755)
    script = PLATFORM_DIR / "kubeflow-pipelines" / "install.sh"
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(script), "2.14.3"], env=env, check=True, timeout=60)
    scoped, namespaced = (yaml.safe_load((record / n).read_text()) for n in ("0", "1"))
    assert scoped["resources"] == [
        "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=2.14.3"
    ]
    assert scoped["components"] == ["../without-cache-cluster-scoped"]
    assert namespaced["resources"] == [
        "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=2.14.3"
    ]
    assert namespaced["components"] == ["../without-cache"]
    deleted = yaml.safe_load(
        (PLATFORM_DIR / "kubeflow-pipelines" / "without-cache" / "kustomization.yaml").read_text()
    )
    names = {yaml.safe_load(p["patch"])["metadata"]["name"] for p in deleted["patches"]}
    assert {"cache-deployer-deployment", "cache-server"} <= names


def test_every_checkov_skip_is_justified_in_place() -> None:
    skip = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(:?)(.*)")
    for path in tf_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = skip.search(line)
            if match:
                assert match.group(2) == ":" and len(match.group(3).strip()) >= 20, (
                    f"{rel(path)}: checkov skip {match.group(1)} needs a reason"
                )


@pytest.mark.parametrize(
    "sample",
    [
        # built at run time so that the repository itself holds no key-shaped literal
        'access_key = "' + "AKIA" + "ABCDEFGHIJKLMNOP" + '"',
        'secret_key = "wJalrXUtnFEMI/K7MDENG"',
        "rootPassword: hunter2hunter2",
        'password = "correcthorsebattery"',
        "adminPassword: prom-operator-but-longer",
    ],
)
def test_static_credential_patterns_catch_planted_samples(sample: str) -> None:
    assert any(p.search(sample) for p in STATIC_SECRET_PATTERNS), sample
