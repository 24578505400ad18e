"""The kserve release's post-renderer, run by the real helm on the real chart (offline).

The kserve chart v0.16.0 always renders 11 ClusterServingRuntimes and a ClusterStorageContainer,
validated by webhooks of the controller the same install is still starting, so a first install
fails. helm/platform/post-renderers/kserve-without-cluster-runtimes drops those documents and
must leave every other one exactly as helm rendered it. The chart is read from KServe's Go
module (the same source the local cluster builds from); helm is .tools/bin/helm
(scripts/k8s-tools.sh, 4.1.4) or the one on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from infra_tfparse import TERRAFORM_DIR, dir_blocks, dir_resources, expr, unq

REPO_ROOT = TERRAFORM_DIR.parent
PLUGIN_NAME = "kserve-without-cluster-runtimes"
PLUGIN_DIR = REPO_ROOT / "helm" / "platform" / "post-renderers" / PLUGIN_NAME
SCRIPT = PLUGIN_DIR / "post-render.sh"
VALUES = REPO_ROOT / "helm" / "platform" / "kserve.yaml"
PLATFORM_DIR = TERRAFORM_DIR / "modules" / "platform"
DROPPED = {"ClusterServingRuntime", "ClusterStorageContainer"}
KSERVE_MODULE = "github.com/kserve/kserve@v0.16.0"
# What the chart renders of the dropped kinds (charts/kserve-resources/templates/
# clusterservingruntimes.yaml and clusterstoragecontainer.yaml at v0.16.0).
CHART_RUNTIMES = 11

SEPARATOR = re.compile(r"^---(?:[ \t].*)?\n", re.M)


def helm_binary() -> str | None:
    local = REPO_ROOT / ".tools" / "bin" / "helm"
    return str(local) if os.access(local, os.X_OK) else shutil.which("helm")


def gomodcache() -> Path:
    """The project's Go module cache (scripts/cluster/lib.sh: GOMODCACHE)."""
    tools = os.environ.get("CLUSTER_TOOLS_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "symptom-dx"
    )
    return Path(tools) / "go" / "mod"


@pytest.fixture(scope="module")
def helm() -> str:
    binary = helm_binary()
    if binary is None:
        pytest.skip("no helm binary: run `bash scripts/k8s-tools.sh` (puts helm 4 in .tools/bin)")
    return binary


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory) -> Path:
    chart = gomodcache() / KSERVE_MODULE / "charts" / "kserve-resources"
    if not chart.is_dir() and shutil.which("go"):
        # First run on a machine: the module proxy, once, into the shared cache.
        subprocess.run(
            ["go", "mod", "download", KSERVE_MODULE],
            cwd=tmp_path_factory.mktemp("gomod"),
            env={**os.environ, "GOMODCACHE": str(gomodcache()), "GOFLAGS": "-modcacherw"},
            capture_output=True,
            timeout=600,
        )
    assert chart.is_dir(), (
        f"KServe's chart source is not in {chart}: `go mod download {KSERVE_MODULE}` with"
        f" GOMODCACHE={gomodcache()} puts it there"
    )
    return chart


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory) -> dict[str, str]:
    """Helm's own folders in a temporary place: nothing of the user's helm is read or changed.

    HELM_PLUGINS is left to its default, $HELM_DATA_HOME/plugins: helm 4.1.4 installs plugins
    there even when HELM_PLUGINS names another folder, and then cannot find them.
    """
    home = tmp_path_factory.mktemp("helm-home")
    env = {k: v for k, v in os.environ.items() if k != "HELM_PLUGINS"}
    for name in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
        env[name] = str(home / name.lower())
    return env


def helm_major(helm: str) -> int:
    out = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=True)
    return int(re.match(r"v(\d+)\.", out.stdout.strip()).group(1))


def template(helm: str, chart: Path, env: dict[str, str], *extra: str) -> str:
    out = subprocess.run(
        [helm, "template", "kserve", str(chart), "-n", "kserve", "-f", str(VALUES), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def documents(stream: str) -> list[str]:
    """The stream cut at its '---' lines, each piece with its separator, text untouched."""
    starts = [m.start() for m in SEPARATOR.finditer(stream)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    pieces = [stream[a:b] for a, b in zip(starts, [*starts[1:], len(stream)], strict=True)]
    return [p for p in pieces if p]


def kind(document: str) -> str | None:
    match = re.search(r"^kind:\s*['\"]?([A-Za-z]+)", document, re.M)
    return match.group(1) if match else None


def run_script(stream: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args], input=stream, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def plain(helm, chart_dir, helm_env) -> str:
    """The chart as helm renders it with our values, no post-renderer."""
    return template(helm, chart_dir, helm_env)


def test_the_chart_renders_the_runtimes_the_post_renderer_is_for(plain) -> None:
    kinds = [kind(d) for d in documents(plain)]
    assert kinds.count("ClusterServingRuntime") == CHART_RUNTIMES
    assert kinds.count("ClusterStorageContainer") == 1


def test_script_drops_only_the_cluster_runtimes_byte_for_byte(plain) -> None:
    """Helm 3 and terraform's helm provider run the script by path on helm's raw output."""
    out = run_script(plain)
    assert out.returncode == 0, out.stderr
    expected = "".join(d for d in documents(plain) if kind(d) not in DROPPED)
    assert out.stdout == expected
    kept = [kind(d) for d in documents(out.stdout)]
    assert not DROPPED & set(kept)
    assert {"Deployment", "ConfigMap", "ValidatingWebhookConfiguration"} <= set(kept)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        # quoted kind, a comment after it, a nested kind key, no leading separator, no final
        # newline, a separator with a trailing comment
        (
            "kind: ClusterServingRuntime\nspec: {}\n---\nkind: A\n",
            "---\nkind: A\n",
        ),
        (
            '---\nkind: "ClusterStorageContainer"  # default\n--- # next\nkind: B\nx:\n'
            "  kind: ClusterServingRuntime\n",
            "--- # next\nkind: B\nx:\n  kind: ClusterServingRuntime\n",
        ),
        ("---\nkind: C\ndata:\n  a: |\n    ---x\n", "---\nkind: C\ndata:\n  a: |\n    ---x\n"),
        ("---\nkind: ClusterServingRuntime\nz: 1", ""),
        ("", ""),
    ],
)
def test_script_edge_cases(stream: str, expected: str) -> None:
    out = run_script(stream)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected


def test_script_is_posix_sh_and_awk_and_rejects_arguments() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert os.access(SCRIPT, os.X_OK)
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for tool in ("python", "yq", "jq", "bash", "perl"):
        assert not re.search(rf"\b{tool}\b", code), f"post-render.sh uses {tool}"
    if shutil.which("dash"):
        out = subprocess.run(
            ["dash", str(SCRIPT)], input="---\nkind: X\n", capture_output=True, text=True
        )
        assert out.stdout == "---\nkind: X\n", out.stderr
    out = run_script("---\nkind: X\n", "--extra")
    assert out.returncode == 2 and "takes no arguments" in out.stderr


def test_helm4_plugin_manifest() -> None:
    manifest = yaml.safe_load((PLUGIN_DIR / "plugin.yaml").read_text(encoding="utf-8"))
    assert manifest == {
        "apiVersion": "v1",
        "type": "postrenderer/v1",
        "name": PLUGIN_NAME,
        "version": manifest["version"],
        "runtime": "subprocess",
        "runtimeConfig": {"platformCommand": [{"command": "${HELM_PLUGIN_DIR}/post-render.sh"}]},
    }


def test_helm_template_with_the_installed_plugin(
    helm, chart_dir, helm_env, plain, tmp_path
) -> None:
    """Helm 4 takes a plugin name: install the folder as a plugin and render through it.

    Helm 4 re-serialises what a post-renderer returns, so the reference is the same render
    through a pass-through (cat) plugin: ours must equal it minus the dropped documents.
    """
    if helm_major(helm) < 4:
        rendered = template(helm, chart_dir, helm_env, "--post-renderer", str(SCRIPT))
        assert rendered == run_script(plain).stdout
        return
    identity = tmp_path / "identity"
    identity.mkdir()
    (identity / "plugin.yaml").write_text(
        "apiVersion: v1\ntype: postrenderer/v1\nname: identity-for-test\nversion: 0.1.0\n"
        "runtime: subprocess\nruntimeConfig:\n  platformCommand:\n    - command: cat\n"
    )
    for folder in (PLUGIN_DIR, identity):
        out = subprocess.run(
            [helm, "plugin", "install", str(folder)], capture_output=True, text=True, env=helm_env
        )
        assert out.returncode == 0, out.stderr
    listed = subprocess.run(
        [helm, "plugin", "list"], capture_output=True, text=True, env=helm_env, check=True
    ).stdout
    assert re.search(rf"^{PLUGIN_NAME}\s+\S+\s+postrenderer/v1", listed, re.M), listed

    ours = template(helm, chart_dir, helm_env, "--post-renderer", PLUGIN_NAME)
    reference = template(helm, chart_dir, helm_env, "--post-renderer", "identity-for-test")
    kept = [d for d in documents(reference) if kind(d) not in DROPPED]
    assert documents(ours) == kept
    assert len(documents(reference)) - len(kept) == CHART_RUNTIMES + 1
    # and what helm 4 got back from the plugin is what the script gives for helm's raw output
    assert [yaml.safe_load(d) for d in documents(ours)] == [
        yaml.safe_load(d) for d in documents(run_script(plain).stdout)
    ]


def test_terraform_runs_the_same_script_for_the_kserve_release() -> None:
    release = dir_resources(PLATFORM_DIR)[("helm_release", "kserve")]
    postrender = release["postrender"]
    # helm provider 3.x (versions.tf): an object attribute `postrender = { binary_path, args }`
    # (a block in 2.x); helm's exec post-renderer resolves a relative path from the working
    # directory, hence abspath
    assert isinstance(postrender, dict) and "__is_block__" not in postrender
    assert set(postrender) == {"binary_path"}
    relative = SCRIPT.relative_to(REPO_ROOT / "helm" / "platform")
    assert expr(postrender["binary_path"]) == f'abspath("${{var.helm_values_dir}}/{relative}")'
    call = dir_blocks(TERRAFORM_DIR / "envs" / "dev", "module")["platform"]
    assert unq(call["helm_values_dir"]) == "${path.root}/../../../helm/platform"
    versions = (PLATFORM_DIR / "versions.tf").read_text(encoding="utf-8")
    assert re.search(
        r'helm = \{\s*source\s*= "hashicorp/helm"\s*version\s*= ">= 3\.0, < 4\.0"', versions
    )


def test_plain_helm_readme_installs_kserve_with_the_post_renderer() -> None:
    readme = (REPO_ROOT / "helm" / "platform" / "README.md").read_text(encoding="utf-8")
    assert f"helm plugin install helm/platform/post-renderers/{PLUGIN_NAME}" in readme
    install = readme[readme.index("helm upgrade --install kserve oci://") :]
    install = install[: install.index("\n\n")]
    assert f"--post-renderer {PLUGIN_NAME}" in install
    assert f"--post-renderer helm/platform/post-renderers/{PLUGIN_NAME}/post-render.sh" in readme


def test_storage_initializer_is_our_image(helm, chart_dir, helm_env, plain) -> None:
    """inferenceservice-config's storageInitializer (what KServe injects when no
    ClusterStorageContainer matches) names our image, with terraform's values and with the
    plain-helm file."""
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))["kserve"]["storage"]
    assert values["image"].endswith("/storage-initializer")
    assert values["image"].split("/")[0] != "kserve" and values["tag"] != "v0.16.0"

    def injected(stream: str) -> str:
        config = next(
            yaml.safe_load(d) for d in documents(stream) if "name: inferenceservice-config" in d
        )
        return yaml.safe_load(config["data"]["storageInitializer"])["image"]

    assert injected(plain) == f"{values['image']}:{values['tag']}"

    release = dir_resources(PLATFORM_DIR)[("helm_release", "kserve")]
    sets = {unq(s["name"]): s["value"] for s in release["set"]}
    assert expr(sets["kserve.storage.image"]) == (
        'aws_ecr_repository.images["storage-initializer"].repository_url'
    )
    assert expr(sets["kserve.storage.tag"]) == "var.image_tag"
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/symptom-dx/storage-initializer"
    tag = unq(dir_blocks(PLATFORM_DIR, "variable")["image_tag"]["default"])
    rendered = template(
        helm,
        chart_dir,
        helm_env,
        "--set",
        f"kserve.storage.image={ecr}",
        "--set",
        f"kserve.storage.tag={tag}",
    )
    assert injected(rendered) == f"{ecr}:{tag}"
    assert "kserve/storage-initializer:v0.16.0" not in run_script(rendered).stdout
