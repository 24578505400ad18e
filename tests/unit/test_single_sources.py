"""Every pinned version and every shared name has one source; every other copy is checked here.

Issue 23, "Versions and names written many times, checked nowhere". A *source* is the file that
decides a value: a go.mod of scripts/cluster/go/ (what the local cluster builds),
requirements.lock and pyproject.toml (what every venv and image installs), terraform's variables
and locals (what EKS gets), symptom_dx's settings and contract, the pipeline's constants,
data/download.py, KServe's own defaults. A *copy* is any other place that states the value:
lib.sh, values files, kustomizations, manifests, the compiled pipeline, comments that name a
version, READMEs that state a pin, tests. Each case compares the copies in one file with their
source and fails with one line:

    <file>:<line>: <what> is '<copy>', <source> says '<value>'

Copies are found two ways. Explicit ones (a shell assignment, a YAML key, a README line of a
known form) must be found: a copy that changes form fails until this file follows it. Sweeps
("KServe v<X.Y.Z>", "github.com/kserve/kserve@<version>", "<service>.<namespace>.svc", ...) run
over every file git knows (go.mod files by their comments only), so a copy written tomorrow is
checked too. Pure file reads: no go, helm, terraform, network, nor import of the project.

Beside that: every == pin of pyproject.toml is the lock's; the root module's terraform
providers are ones every module accepts; and every version variable of lib.sh and terraform is
a source or a checked copy here (or listed, with why, in UNCHECKED_VERSIONS).

Known disagreements are xfail(strict=True): each fails the day it is fixed, and its mark goes
then.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().relative_to(REPO).as_posix()

GO = "scripts/cluster/go"
LIB = "scripts/cluster/lib.sh"
CLUSTER_README = "scripts/cluster/README.md"
CLUSTER_CONFTEST = "tests/cluster/conftest.py"
KFP_LOCAL = "scripts/cluster/kfp/local/kustomization.yaml"
MON_LOCAL = "scripts/cluster/monitoring/values-local.yaml"
TF_PLATFORM = "terraform/modules/platform"
TF_ENV = "terraform/envs/dev"
TF_ENV_README = "terraform/envs/dev/README.md"
TFVARS = "terraform/envs/dev/terraform.tfvars.example"
HELM_README = "helm/platform/README.md"
FIXTURE = "tests/infra/fixtures/chart_documented_keys.yaml"
KUSTOMIZATION = "manifests/base/kustomization.yaml"
PIPELINE = "pipelines/disease_training_pipeline.py"
PIPELINE_IR = "pipelines/disease_training_pipeline.yaml"
RUN_LOCAL = "pipelines/run_local.py"
SETTINGS = "src/symptom_dx/settings.py"

# What sweeps never read: data, resources, generated files and binaries.
SKIP_DIRS = ("data/", "tests/data/", "src/symptom_dx/resources/", "test-artifacts/")
SKIP_SUFFIXES = (".sum", ".csv", ".lock", ".png", ".jpg", ".gif", ".ico", ".tgz", ".gz", ".zip")

V = r"(v\d+\.\d+\.\d+)"  # a Go release
GOVER = r"(v\d[0-9A-Za-z.+-]*)"  # any Go module version, pseudo-versions too
SEMVER = r"(\d+\.\d+\.\d+)"


class SourceError(Exception):
    """A source could not be read (its message is the failure line)."""


# -- reading files ---------------------------------------------------------------------------


@functools.cache
def text(path: str) -> str:
    try:
        return (REPO / path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist") from None


@functools.cache
def swept_text(path: str) -> str:
    """What sweeps read: go.mod files by their comments only (their requires are sources)."""
    body = text(path)
    if path.endswith("go.mod"):
        return "\n".join(x if x.lstrip().startswith("//") else "" for x in body.split("\n"))
    return body


@functools.cache
def files() -> tuple[str, ...]:
    """Every text file of the work tree that git knows or would add, as repository paths."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        paths = listed.split("\0")
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", ".state", ".tools", "node_modules", "__pycache__"}
        paths = [
            p.relative_to(REPO).as_posix()
            for p in REPO.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(REPO).parts)
        ]
    kept = []
    for path in sorted(set(paths)):
        if not path or path == HERE or path.startswith(SKIP_DIRS) or path.endswith(SKIP_SUFFIXES):
            continue
        if not (REPO / path).is_file():
            continue
        try:
            text(path)
        except UnicodeDecodeError:
            continue
        kept.append(path)
    return tuple(kept)


def line_at(body: str, offset: int) -> int:
    return body.count("\n", 0, offset) + 1


def line_of(path: str, needle: str) -> int:
    """The first line of ``path`` holding ``needle`` (0: none)."""
    offset = text(path).find(needle)
    return line_at(text(path), offset) if offset >= 0 else 0


def first(path: str, pattern: str, flags: int = re.M) -> str:
    """Group 1 of the first match of ``pattern`` in ``path``: how sources are read."""
    match = re.search(pattern, text(path), flags)
    if match is None:
        raise SourceError(f"{path}: nothing matches /{pattern}/ (the source changed form)")
    return match.group(1)


@functools.cache
def yaml_docs(path: str) -> tuple:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(d for d in yaml.load_all(text(path), Loader=loader) if d)


def walk(node: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) of a YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


@functools.cache
def folded(path: str) -> str:
    return swept_text(path).lower()


@functools.cache
def literal(pattern: str) -> tuple[str, bool]:
    """The text every match of ``pattern`` starts with, past anchors ('' if none), and whether
    the pattern ignores case: a cheap `in` before the regex keeps the sweeps fast."""
    fold = pattern.startswith("(?i)")
    rest = re.sub(r"^(?:\\b|\^|\\A|\\s[+*]|\()*", "", pattern[4:] if fold else pattern)
    out, i = [], 0
    while i < len(rest):
        if rest[i] == "\\" and i + 1 < len(rest) and not rest[i + 1].isalnum():
            char, step = rest[i + 1], 2
        elif rest[i].isalnum() or rest[i] in " -_/:=`\"',<>@#!%&~;":
            char, step = rest[i], 1
        else:
            break
        if rest[i + step : i + step + 1] in ("?", "*", "{"):
            break
        out.append(char)
        i += step
    return "".join(out), fold


# -- sources -----------------------------------------------------------------------------------


def gomod_line(module: str) -> str:
    """A require line (block or single) of ``module`` in a go.mod; group 1 is its version."""
    return rf"^\s*(?:require\s+)?{re.escape(module)} {GOVER}(?:\s|$)"


def go_version(wrapper: str, module: str) -> Callable[[], str]:
    return lambda: first(f"{GO}/{wrapper}/go.mod", gomod_line(module))


def shell_var(path: str, name: str) -> Callable[[], str]:
    return lambda: first(path, rf"^{name}=\"?([^\s\"#]+)")


def tf_pattern(variable: str) -> str:
    """The string default of a terraform variable (group 1)."""
    return rf'variable\s+"{variable}"\s*\{{[^}}]*?^\s*default\s*=\s*"([^"]*)"'


def tf_default(directory: str, variable: str) -> Callable[[], str]:
    return lambda: first(f"{directory}/variables.tf", tf_pattern(variable), re.M | re.S)


def tf_local(path: str, name: str) -> Callable[[], str]:
    return lambda: first(path, rf'^\s*{name}\s*=\s*"([^"]*)"')


def tf_block_name(kind: str, resource: str) -> str:
    """The first ``name = "..."`` of a terraform resource block (group 1)."""
    return rf'resource "{kind}" "{resource}" \{{(?:(?!\n\}}).)*?\bname\s*=\s*"([^"]+)"'


def tf_name(path: str, kind: str, resource: str) -> Callable[[], str]:
    return lambda: first(path, tf_block_name(kind, resource), re.S)


def py_constant(path: str, name: str) -> Callable[[], str]:
    return lambda: first(path, rf'^{name} = "([^"]+)"')


def py_field(path: str, name: str) -> Callable[[], str]:
    """The literal default of a pydantic field ``name: T = Field(<default>, ...)``."""
    return lambda: first(path, rf'^\s+{name}: [\w |]+ = Field\(\s*"?([^",)]+)"?')


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def lock() -> dict[str, str]:
    """requirements.lock: normalized name -> version."""
    pins = {}
    for line in text("requirements.lock").splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[normalize(match[1])] = match[2]
    return pins


def lock_version(name: str) -> Callable[[], str]:
    def value() -> str:
        if normalize(name) not in lock():
            raise SourceError(f"requirements.lock pins no {name}")
        return lock()[normalize(name)]

    return value


def minor(version: str) -> str:
    """'v1.34.4' -> '1.34'."""
    return ".".join(version.lstrip("v").split(".")[:2])


def prometheus_release(module_version: str) -> str:
    """Prometheus' Go module v0.307.2 is its release v3.7.2 (v3.x.y = v0.3xx.y)."""
    _, middle, patch = module_version.lstrip("v").split(".", 2)
    return f"v{int(middle) // 100}.{int(middle) % 100}.{patch}"


def joined_path(expression: str) -> str:
    """'REPO / "data" / "downloads"' or 'Path("data/downloads")' -> 'data/downloads'."""
    return "/".join(re.findall(r'"([^"]+)"', expression))


def download_folder() -> str:
    tail = first("data/download.py", r"^DEFAULT_DEST = Path\(__file__\)\S*\.parent(.*)$")
    return f"data/{joined_path(tail)}"


def kserve_constant(name: str) -> Callable[[], str]:
    """A constant of the installed kserve package, read from its source (not imported)."""

    def value() -> str:
        spec = importlib.util.find_spec("kserve")
        if spec is None or not spec.submodule_search_locations:
            raise SourceError("the kserve package is not installed in this venv")
        path = Path(spec.submodule_search_locations[0]) / "constants" / "constants.py"
        match = re.search(rf"^{name} = (\d+)", path.read_text(encoding="utf-8"), re.M)
        if match is None:
            raise SourceError(f"{path}: no {name}")
        return match.group(1)

    return value


@functools.cache
def tf_namespaces() -> frozenset[str]:
    block = first(f"{TF_PLATFORM}/main.tf", r"namespaces = toset\(\[(.*?)\]\)", re.S)
    return frozenset(re.findall(r'"([^"]+)"', block))


@functools.cache
def tf_bucket_workloads() -> dict[str, tuple[str, str]]:
    """terraform's local.bucket_workloads: workload -> (namespace, service account)."""
    block = first(f"{TF_PLATFORM}/main.tf", r"bucket_workloads = \{(.*?)\n  \}", re.S)
    found = re.findall(
        r'([\w-]+) = \{\s*namespace\s*=\s*"([^"]+)"\s*service_account\s*=\s*"([^"]+)"', block
    )
    if not found:
        raise SourceError(f"{TF_PLATFORM}/main.tf: local.bucket_workloads changed form")
    return {name: (ns, account) for name, ns, account in found}


@functools.cache
def tf_secrets(storage_backend: str) -> frozenset[str]:
    """'namespace/name' of every Secret terraform writes with that storage_backend."""
    written = set()
    body = text(f"{TF_PLATFORM}/storage.tf")
    for match in re.finditer(r'resource "kubernetes_secret_v1" "\w+" \{(.*?)\n\}', body, re.S):
        block = match.group(1)
        only = re.search(r"(?:count|for_each)\s*=\s*local\.use_(minio|s3)", block)
        if only and only.group(1) != storage_backend:
            continue
        name = re.search(r'\bname\s*=\s*"([^"]+)"', block)
        ns = re.search(
            r'kubernetes_namespace_v1\.this\[(?:"([^"]+)"|each\.value\.namespace)]', block
        )
        if name is None or ns is None:
            raise SourceError(f"{TF_PLATFORM}/storage.tf: a kubernetes_secret_v1 changed form")
        namespaces = (
            [ns.group(1)] if ns.group(1) else [n for n, _ in tf_bucket_workloads().values()]
        )
        written.update(f"{n}/{name.group(1)}" for n in namespaces)
    if not written:
        raise SourceError(f"{TF_PLATFORM}/storage.tf: no kubernetes_secret_v1")
    return frozenset(written)


def image_names() -> list[str]:
    """Our images as manifests/base/kustomization.yaml names them: the one place they live
    (pipelines/compile.py)."""
    return [i.get("newName", i["name"]) for i in yaml_docs(KUSTOMIZATION)[0]["images"]]


def our_registry() -> str:
    registries = {name.rsplit("/", 1)[0] for name in image_names()}
    if len(registries) != 1:
        raise SourceError(f"{KUSTOMIZATION} names several registries: {sorted(registries)}")
    return registries.pop()


# -- copies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    path: str
    line: int  # 0: not known
    value: object

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Copy:
    """Where one file states the value: regexes (their group 1, or ``group``) or ``get``."""

    path: str
    patterns: tuple[str, ...] = ()
    what: str = ""
    flags: int = re.M
    group: int = 1
    transform: Callable[[str], object] | None = None
    get: Callable[[], list[Found]] | None = None
    xfail: str = ""
    swept: bool = False  # read as sweeps read (go.mod: comments only)

    def found(self) -> list[Found]:
        if self.get is not None:
            return self.get()
        body = swept_text(self.path) if self.swept else text(self.path)
        out = []
        for pattern in self.patterns:
            for match in re.finditer(pattern, body, self.flags):
                value = match.group(self.group).rstrip(".")
                if self.transform is not None:
                    value = self.transform(value)
                out.append(Found(self.path, line_at(body, match.start(self.group)), value))
        return out


def rx(path: str, *patterns: str, what: str = "", **kw: object) -> Copy:
    return Copy(path, patterns, what or literal(patterns[0])[0].strip() or patterns[0], **kw)


def shell(path: str, name: str, **kw: object) -> Copy:
    return Copy(path, (rf"^{name}=\"?([^\s\"#]+)",), name, **kw)


def tf(directory: str, variable: str, **kw: object) -> Copy:
    pattern = tf_pattern(variable)
    return Copy(f"{directory}/variables.tf", (pattern,), f"variable {variable}", re.M | re.S, **kw)


def gomod(wrapper: str, module: str) -> Copy:
    return Copy(f"{GO}/{wrapper}/go.mod", (gomod_line(module),), f"requires {module}")


def yaml_value(path: str, *keys: object, what: str = "", transform: Callable | None = None) -> Copy:
    """The value at ``keys`` of the file's first YAML document."""

    def get() -> list[Found]:
        node = yaml_docs(path)[0]
        for key in keys:
            node = node[key]
        value = str(node)
        return [Found(path, line_of(path, value), transform(value) if transform else value)]

    return Copy(path, what=what or ".".join(map(str, keys)), get=get)


def kustomize_tag(path: str, image: str) -> Copy:
    """``newTag`` of the kustomization's ``images:`` entry for ``image`` (name or newName)."""

    def get() -> list[Found]:
        for entry in yaml_docs(path)[0]["images"]:
            if image in (entry["name"], entry.get("newName")):
                line = line_of(path, f"name: {entry['name']}\n")
                return [Found(path, line + (2 if "newName" in entry else 1), str(entry["newTag"]))]
        return []

    return Copy(path, what=f"images[{image}].newTag", get=get)


def strings(path: str, pattern: str, what: str = "", as_set: bool = False) -> Copy:
    """The quoted strings inside group 1 of ``pattern`` (a Python tuple, an HCL list): each,
    or all as one set."""

    def get() -> list[Found]:
        out = []
        for match in re.finditer(pattern, text(path), re.M | re.S):
            line = line_at(text(path), match.start(1))
            found = re.findall(r'"([^"]+)"', match.group(1))
            out += (
                [Found(path, line, frozenset(found))]
                if as_set
                else [Found(path, line, s) for s in found]
            )
        return out

    return Copy(path, what=what or pattern, get=get)


def network_policy_ports(path: str, policy: str) -> Copy:
    def get() -> list[Found]:
        docs = [d for d in yaml_docs(path) if d["metadata"]["name"] == policy]
        ports = [str(p["port"]) for d in docs for r in d["spec"]["ingress"] for p in r["ports"]]
        return [Found(path, line_of(path, f"name: {policy}"), p) for p in ports]

    return Copy(path, what=f"NetworkPolicy {policy} ports", get=get)


def helm_install(release: str) -> Copy:
    pattern = rf"helm upgrade --install {release} \S+(?: \\\n)?\s+--version (\S+)"
    return rx(HELM_README, pattern, what=f"helm upgrade --install {release} --version")


def helm_table(release: str) -> Copy:
    pattern = rf"^\| \d+ \| `{release}` \(`[^`]*`\) \|[^|]*\| `([^`]+)` \|"
    return rx(HELM_README, pattern, what=f"versions table, {release}")


def helm_list(release: str) -> Copy:
    pattern = rf"^\s+{release}\s+\S+\s+deployed\s+{release}-(\S+)$"
    return rx(TF_ENV_README, pattern, what=f"`helm list`, {release}")


def values_header(file: str) -> Copy:
    pattern = r"\A# [^\n]*?\(chart (?:\"[\w-]+\" )?(v?\d+\.\d+\.\d+)"
    return rx(f"helm/platform/{file}", pattern, what="first line")


def fixture(chart: str) -> Copy:
    return yaml_value(FIXTURE, "charts", chart, "version")


def mention(word: str, gap: int = 40) -> str:
    """'<word> ... v1.2.3' on one line: the first version after the word, with no '.', '@' or
    capital letter between (in 'cert-manager.yaml) and KServe v0.16.0' or 'cert-manager, KServe
    v0.16.0', v0.16.0 is not cert-manager's)."""
    return rf"\b{word}\b[^\n.@A-Z]{{0,{gap}}}?\b{V}\b"


def at(module: str) -> str:
    """'<module>@<version>', as `go install` and the READMEs write it."""
    return rf"{re.escape(module)}@{GOVER}"


# -- pins ---------------------------------------------------------------------------------------


@dataclass
class Pin:
    subject: str  # what the value is, in the failure line
    source: str  # where it is decided
    value: Callable[[], object]
    copies: list[Copy] = field(default_factory=list)
    sweeps: tuple[str, ...] = ()
    member: bool = False  # value() is a set: each copy names one (a set copy: a subset)
    transform: Callable[[str], object] | None = None  # of swept values
    sweep_xfail: dict[str, str] = field(default_factory=dict)  # path -> reason
    sweep_paths: Callable[[str], bool] = lambda path: True  # which files the sweeps read
    not_pins: frozenset[tuple[str, str]] = frozenset()  # (path, value): mentions, not copies


def go_pin(subject: str, wrapper: str, module: str, **kw: object) -> Pin:
    return Pin(subject, f"{GO}/{wrapper}/go.mod ({module})", go_version(wrapper, module), **kw)


def chart_pin(subject: str, variable: str, release: str, values: str, **kw: object) -> Pin:
    """A platform chart: terraform's module default decides; the root module, the plain-helm
    recipe, the values file's header, `helm list` in the runbook and the fixture copy it."""
    copies = [
        tf(TF_ENV, variable),
        helm_table(release),
        helm_install(release),
        values_header(values),
        helm_list(release),
        fixture(release),
    ]
    source = f"{TF_PLATFORM}/variables.tf (variable {variable})"
    return Pin(subject, source, tf_default(TF_PLATFORM, variable), copies, **kw)


K8S = go_version("k8s", "k8s.io/kubernetes")
KFP_MODULE = go_version("kfp", "github.com/kubeflow/pipelines")
KFP_TAG = shell_var(LIB, "KFP_VERSION")


def versions() -> list[Pin]:
    return [
        # Kubernetes and the rest of the local cluster: scripts/cluster/go/*/go.mod decide
        go_pin(
            "Kubernetes",
            "k8s",
            "k8s.io/kubernetes",
            copies=[
                shell(LIB, "K8S_VERSION"),
                rx(LIB, r"^K8S_BUILD_DATE=\S+ # the (v\S+) tag"),
                rx("tests/cluster/test_application.py", r'\["kubeletVersion"\] == "(v[^"]+)"'),
            ],
            sweeps=(
                at("k8s.io/kubernetes"),
                r"(?i)\bkubernetes\b[^\n.@]{0,3}\(?" + V,
                r"gitVersion=" + V,
                r"Server Version: " + V,
            ),
        ),
        Pin(
            "the k8s.io staging modules",
            f"{GO}/k8s/go.mod (k8s.io/kubernetes, as v0.<minor>.<patch>)",
            lambda: "v0." + K8S().lstrip("v").split(".", 1)[1],
            [
                rx(f"{GO}/k8s/go.mod", r"^\s+k8s\.io/[\w-]+ => k8s\.io/[\w-]+ (v\S+)$"),
                rx(f"{GO}/k8s/go.mod", r"to the matching (v\S+) release"),
                rx(CLUSTER_README, r"pinned to (v0\.\d+\.\d+) by `replace`"),
            ],
        ),
        Pin(
            "the Kubernetes minor",
            f"{GO}/k8s/go.mod (k8s.io/kubernetes)",
            lambda: minor(K8S()),
            [
                rx("scripts/cluster/build.sh", r"gitMinor=(\d+)", transform=lambda m: "1." + m),
                # EKS runs the minor the local cluster is built at
                tf(TF_ENV, "kubernetes_version"),
                tf("terraform/modules/cluster", "kubernetes_version"),
                rx(TFVARS, r'^kubernetes_version\s*=\s*"([^"]+)"'),
                # cluster-autoscaler's minor must be the cluster's
                tf(TF_PLATFORM, "cluster_autoscaler_image_tag", transform=minor),
                tf(TF_ENV, "cluster_autoscaler_image_tag", transform=minor),
                rx(HELM_README, r"--set image\.tag=(v\S+)", transform=minor),
                # crictl speaks the kubelet's CRI: same minor
                shell(LIB, "CRICTL_VERSION", transform=minor),
            ],
            sweeps=(r"(?i)\bkubernetes\s+\(?v?(\d+\.\d+)(?![.\d])", r"\bv(\d+\.\d+)\.x-eks\b"),
        ),
        go_pin(
            "etcd",
            "etcd",
            "go.etcd.io/etcd/server/v3",
            copies=[shell(LIB, "ETCD_VERSION")],
            sweeps=(at("go.etcd.io/etcd/server/v3"), r"^\| etcd \| " + V),
        ),
        go_pin(
            "CoreDNS",
            "coredns",
            "github.com/coredns/coredns",
            copies=[shell(LIB, "COREDNS_VERSION")],
            sweeps=(at("github.com/coredns/coredns"), r"^\| CoreDNS \| " + V),
        ),
        go_pin(
            "metrics-server",
            "metrics-server",
            "sigs.k8s.io/metrics-server",
            copies=[
                shell(LIB, "METRICS_SERVER_VERSION"),
                kustomize_tag(
                    "scripts/cluster/addons/metrics-server/kustomization.yaml",
                    "localhost/symptomdx/metrics-server",
                ),
            ],
            sweeps=(at("sigs.k8s.io/metrics-server"), mention("metrics-server", 4)),
        ),
        go_pin(
            "crictl",
            "crictl",
            "sigs.k8s.io/cri-tools",
            copies=[shell(LIB, "CRICTL_VERSION")],
            sweeps=(at("sigs.k8s.io/cri-tools"), r"^\| crictl \| " + V),
        ),
        go_pin(
            "KServe",
            "kserve",
            "github.com/kserve/kserve",
            copies=[
                shell(LIB, "KSERVE_VERSION"),
                yaml_value(
                    "scripts/cluster/kserve/values-kserve.yaml", "kserve", "controller", "tag"
                ),
                # EKS installs the charts of the release the local cluster builds
                tf(TF_PLATFORM, "kserve_version"),
                tf(TF_ENV, "kserve_version"),
                helm_table("kserve-crd"),
                helm_table("kserve"),
                helm_install("kserve-crd"),
                helm_install("kserve"),
                rx(HELM_README, r"controller charts stay at " + V),
                values_header("kserve.yaml"),
                helm_list("kserve"),
                helm_list("kserve-crd"),
                fixture("kserve"),
            ],
            sweeps=(at("github.com/kserve/kserve"), mention("(?:KServe|kserve)(?:-crd)?")),
            # "KServe's install guide shows `--version v0.17.0`": why not that release
            not_pins=frozenset({(HELM_README, "v0.17.0")}),
        ),
        Pin(
            "KServe's controller-runtime",
            f"{GO}/kserve/go.mod (replace sigs.k8s.io/controller-runtime)",
            lambda: first(
                f"{GO}/kserve/go.mod", r"sigs\.k8s\.io/controller-runtime => \S+ (v\S+)$"
            ),
            [rx(CLUSTER_README, r"`replace sigs\.k8s\.io/controller-runtime => (v\S+?)`")],
        ),
        go_pin(
            "kube-rbac-proxy",
            "kube-rbac-proxy",
            "github.com/brancz/kube-rbac-proxy",
            copies=[shell(LIB, "KUBE_RBAC_PROXY_VERSION")],
            sweeps=(at("github.com/brancz/kube-rbac-proxy"), r"\bkube-rbac-proxy[: ]" + V),
        ),
        go_pin(
            "cert-manager",
            "cert-manager",
            "github.com/cert-manager/cert-manager",
            copies=[
                shell(LIB, "CERT_MANAGER_VERSION"),
                rx("scripts/cluster/kserve/values-cert-manager.yaml", r"^\s+tag: (\S+)$"),
                tf(TF_PLATFORM, "cert_manager_version"),
                tf(TF_ENV, "cert_manager_version"),
                helm_table("cert-manager"),
                helm_install("cert-manager"),
                values_header("cert-manager.yaml"),
                helm_list("cert-manager"),
                fixture("cert-manager"),
            ],
            sweeps=(at("github.com/cert-manager/cert-manager"), mention("cert-manager")),
        ),
        Pin(
            "cert-manager's k8s.io modules",
            f"{GO}/cert-manager/go.mod (k8s.io/api)",
            go_version("cert-manager", "k8s.io/api"),
            [rx(CLUSTER_README, r"\(k8s\.io (\d\S*),", transform=lambda v: f"v{v}")],
        ),
        Pin(
            "cert-manager's controller-runtime",
            f"{GO}/cert-manager/go.mod (sigs.k8s.io/controller-runtime)",
            go_version("cert-manager", "sigs.k8s.io/controller-runtime"),
            [
                rx(
                    CLUSTER_README,
                    r",\s+controller-runtime (\d\S*?)\)",
                    what="(k8s.io ..., controller-runtime X)",
                    transform=lambda v: f"v{v}",
                )
            ],
        ),
        Pin(
            "MinIO (local cluster)",
            f"{LIB} (MINIO_VERSION: `go install`, no go.mod)",
            shell_var(LIB, "MINIO_VERSION"),
            [rx(CLUSTER_README, r"^\| MinIO \(stage 2\) \| `(\S+?)` \|")],
            sweeps=(at("github.com/minio/minio"),),
        ),
        Pin(
            "MinIO's image tag (local cluster)",
            f"{LIB} (MINIO_VERSION's commit, as MINIO_IMAGE)",
            lambda: shell_var(LIB, "MINIO_VERSION")().rsplit("-", 1)[-1],
            [kustomize_tag(KFP_LOCAL, "gcr.io/ml-pipeline/minio")],
        ),
        # Kubeflow Pipelines and Argo
        go_pin(
            "Kubeflow Pipelines' Go module",
            "kfp",
            "github.com/kubeflow/pipelines",
            copies=[
                shell(LIB, "KFP_MODULE_VERSION"),
                shell("scripts/cluster/kfp/frontend/build.sh", "KFP_PSEUDO"),
                rx(f"{GO}/kfp/go.mod", r"KFP tags are not semver: (v0\.0\.0-[\w-]+)\)"),
            ],
            sweeps=(at("github.com/kubeflow/pipelines"),),
        ),
        Pin(
            "Kubeflow Pipelines' commit",
            f"{GO}/kfp/go.mod (github.com/kubeflow/pipelines, its pseudo-version's commit)",
            lambda: KFP_MODULE().rsplit("-", 1)[-1],
            [rx(LIB, r"^KFP_COMMIT=([0-9a-f]{12})")],
        ),
        go_pin(
            "KFP's api module",
            "kfp",
            "github.com/kubeflow/pipelines/api",
            copies=[shell(LIB, "KFP_API_MODULE_VERSION")],
        ),
        go_pin(
            "KFP's kubernetes_platform module",
            "kfp",
            "github.com/kubeflow/pipelines/kubernetes_platform",
            copies=[shell(LIB, "KFP_PLATFORM_MODULE_VERSION")],
        ),
        Pin(
            "the Kubeflow Pipelines release",
            f"{LIB} (KFP_VERSION, the tag of KFP_MODULE_VERSION)",
            KFP_TAG,
            [
                rx(f"{GO}/kfp/go.mod", r"upstream module at the (\S+)\s+(?://\s+)?commit"),
                shell("scripts/cluster/kfp/frontend/build.sh", "KFP_VERSION"),
                rx("scripts/cluster/kfp/frontend/smoke.sh", r'h\["frontendTagName"\]=="([^"]+)"'),
                kustomize_tag(KFP_LOCAL, "ghcr.io/kubeflow/kfp-api-server"),
                kustomize_tag(KFP_LOCAL, "ghcr.io/kubeflow/kfp-persistence-agent"),
                kustomize_tag(KFP_LOCAL, "ghcr.io/kubeflow/kfp-scheduled-workflow-controller"),
                kustomize_tag(KFP_LOCAL, "ghcr.io/kubeflow/kfp-frontend"),
                tf(TF_PLATFORM, "kfp_version"),
                tf(TF_ENV, "kfp_version"),
                rx(TFVARS, r'^kfp_version\s*=\s*"([^"]+)"'),
                rx(HELM_README, r"^\| 7 \| Kubeflow Pipelines [^\n]*\| `([^`]+)` \| \(none\) \|"),
                rx(HELM_README, r"kubeflow-pipelines/install\.sh (\S+)$"),
                rx(
                    HELM_README, r"^Why (\S+) and not a newer release", what="Why X and not a newer"
                ),
                rx("tests/infra/test_terraform_structure.py", r'str\(script\), "([^"]+)"\]'),
            ],
            sweeps=(
                r"\bKubeflow Pipelines(?: backend)? " + SEMVER + r"\b",
                r"\bKFP " + SEMVER + r"\b",
                r"\bkfp-(?:api-server|persistenceagent|scheduledworkflow|driver|launcher|frontend):"
                + SEMVER,
                r"\bref=" + SEMVER,
                r"\(= (?:tag )?" + SEMVER + r"[;)]",
            ),
        ),
        Pin(
            "the kfp SDK's minor",
            f"{LIB} (KFP_VERSION: the SDK compiles for that backend, same minor)",
            lambda: minor(KFP_TAG()),
            [rx("requirements.lock", r"^kfp==(\S+)$", transform=minor)],
            sweeps=(r"\bKFP (\d+\.\d+)(?![.\d])", r"\bKubeflow Pipelines (\d+\.\d+)(?![.\d])"),
        ),
        go_pin(
            "Argo Workflows",
            "argo",
            "github.com/argoproj/argo-workflows/v3",
            copies=[
                shell(LIB, "ARGO_VERSION"),
                rx(LIB, r"^ARGO_BUILD_DATE=\S+ # the (v\S+) tag"),
                # the release KFP's own go.mod requires is the one built
                gomod("kfp", "github.com/argoproj/argo-workflows/v3"),
                kustomize_tag(KFP_LOCAL, "quay.io/argoproj/workflow-controller"),
            ],
            sweeps=(
                at("github.com/argoproj/argo-workflows/v3"),
                r"\bArgo Workflows " + V,
                r"\bargo(?:exec|-workflow-controller):" + V,
                r"Argo module \(`" + V + r"`\)",
            ),
        ),
        Pin(
            "ml-metadata (local KFP)",
            "scripts/cluster/kfp/mlmd.Dockerfile (ml-metadata==)",
            lambda: first("scripts/cluster/kfp/mlmd.Dockerfile", r"ml-metadata==(\S+)"),
            [
                kustomize_tag(KFP_LOCAL, "gcr.io/tfx-oss-public/ml_metadata_store_server"),
                rx("scripts/cluster/kfp/check_images.py", r'^MLMD_IMAGE = "\S+:([^"]+)"'),
            ],
            sweeps=(r"\bmlmd-server:(\d[\w.]*)", r"\bml-metadata (\d[\w.]*\d)"),
        ),
        Pin(
            "MariaDB (local KFP)",
            "scripts/cluster/kfp/images.sh (MARIADB_IMAGE)",
            lambda: first("scripts/cluster/kfp/images.sh", r"^MARIADB_IMAGE=\S+:(\S+)$"),
            [
                kustomize_tag(KFP_LOCAL, "mysql"),
                rx("scripts/cluster/kfp/check_images.py", r'^MARIADB_IMAGE = "\S+:([^"]+)"'),
            ],
            sweeps=(r"\bmariadb:(\d[\w.]*)", r"\bMariaDB (\d+\.\d+)\b"),
        ),
        # monitoring: kube-prometheus-stack's images, built from their modules
        go_pin(
            "prometheus-operator",
            "prometheus-operator",
            "github.com/prometheus-operator/prometheus-operator",
            copies=[
                shell(LIB, "PROMETHEUS_OPERATOR_VERSION"),
                gomod(
                    "prometheus-operator",
                    "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring",
                ),
                gomod(
                    "prometheus-operator",
                    "github.com/prometheus-operator/prometheus-operator/pkg/client",
                ),
                rx(MON_LOCAL, r"symptomdx/prometheus-operator, tag: (\S+?)\}"),
                rx(MON_LOCAL, r"symptomdx/prometheus-config-reloader, tag: (\S+?)\}"),
            ],
            sweeps=(at("github.com/prometheus-operator/prometheus-operator"),),
        ),
        go_pin(
            "Prometheus' Go module",
            "prometheus",
            "github.com/prometheus/prometheus",
            copies=[rx(LIB, r"# Go module github\.com/prometheus/prometheus (v\S+)")],
            sweeps=(at("github.com/prometheus/prometheus"),),
        ),
        Pin(
            "Prometheus",
            f"{GO}/prometheus/go.mod (github.com/prometheus/prometheus; v0.3xx.y is v3.x.y)",
            lambda: prometheus_release(
                go_version("prometheus", "github.com/prometheus/prometheus")()
            ),
            [
                shell(LIB, "PROMETHEUS_VERSION"),
                rx(MON_LOCAL, r"symptomdx/prometheus, tag: (\S+?)\}"),
                rx(CLUSTER_README, r"^\| Prometheus \([^|]*\| (v\S+) \|"),
            ],
        ),
        go_pin(
            "Alertmanager",
            "alertmanager",
            "github.com/prometheus/alertmanager",
            copies=[
                shell(LIB, "ALERTMANAGER_VERSION"),
                rx(MON_LOCAL, r"symptomdx/alertmanager, tag: (\S+?)\}"),
                rx("scripts/cluster/build.sh", r'version_ldflags "\$ALERTMANAGER_VERSION" (v\S+)'),
            ],
            sweeps=(at("github.com/prometheus/alertmanager"),),
        ),
        go_pin(
            "node-exporter",
            "node-exporter",
            "github.com/prometheus/node_exporter",
            copies=[
                shell(LIB, "NODE_EXPORTER_VERSION"),
                rx(MON_LOCAL, r"symptomdx/node-exporter, tag: (\S+?)\}"),
                rx("scripts/cluster/build.sh", r'version_ldflags "\$NODE_EXPORTER_VERSION" (v\S+)'),
            ],
            sweeps=(at("github.com/prometheus/node_exporter"),),
        ),
        go_pin(
            "kube-network-policies",
            "kube-network-policies",
            "sigs.k8s.io/kube-network-policies",
            copies=[
                shell(LIB, "KNP_VERSION"),
                kustomize_tag(
                    "scripts/cluster/netpol/kustomization.yaml",
                    "localhost/symptomdx/kube-network-policies",
                ),
            ],
            sweeps=(at("sigs.k8s.io/kube-network-policies"), r"\bkube-network-policies`? " + V),
        ),
        # the platform's charts and modules on EKS: terraform decides
        Pin(
            "kube-prometheus-stack",
            f"{TF_PLATFORM}/variables.tf (variable kube_prometheus_stack_version)",
            tf_default(TF_PLATFORM, "kube_prometheus_stack_version"),
            [
                tf(TF_ENV, "kube_prometheus_stack_version"),
                shell(LIB, "KPS_CHART_VERSION"),
                helm_table("kube-prometheus-stack"),
                helm_install("kube-prometheus-stack"),
                values_header("kube-prometheus-stack.yaml"),
                helm_list("kube-prometheus-stack"),
                fixture("kube-prometheus-stack"),
                rx(CLUSTER_README, r"packaged chart of `\.\./shared/charts/` \((\S+?),"),
            ],
            sweeps=(r"\bkube-prometheus-stack[-` |]{1,6}" + SEMVER + r"\b",),
        ),
        chart_pin("MinIO's chart", "minio_chart_version", "minio", "minio.yaml"),
        chart_pin(
            "cluster-autoscaler's chart",
            "cluster_autoscaler_chart_version",
            "cluster-autoscaler",
            "cluster-autoscaler.yaml",
        ),
        Pin(
            "cluster-autoscaler's image",
            f"{TF_PLATFORM}/variables.tf (variable cluster_autoscaler_image_tag)",
            tf_default(TF_PLATFORM, "cluster_autoscaler_image_tag"),
            [
                tf(TF_ENV, "cluster_autoscaler_image_tag"),
                rx(HELM_README, r"--set image\.tag=(\S+)"),
            ],
        ),
        Pin(
            "terraform-aws-modules/eks/aws",
            "terraform/modules/cluster/main.tf (module eks)",
            lambda: first(
                "terraform/modules/cluster/main.tf",
                r'"terraform-aws-modules/eks/aws"\s*\n\s*version\s*=\s*"([^"]+)"',
            ),
            [
                rx("terraform/README.md", r"pinned exactly\*\* \(`[^`]+`, `([^`]+)`\)"),
                rx("terraform/README.md", r"which module (\S+) does not open"),
            ],
            sweeps=(r"terraform-aws-modules/eks/aws`? " + SEMVER,),
        ),
        Pin(
            "terraform-aws-modules/vpc/aws",
            "terraform/modules/network/main.tf (module vpc)",
            lambda: first(
                "terraform/modules/network/main.tf",
                r'"terraform-aws-modules/vpc/aws"\s*\n\s*version\s*=\s*"([^"]+)"',
            ),
            [rx("terraform/README.md", r"pinned exactly\*\* \(`([^`]+)`, `[^`]+`\)")],
            sweeps=(r"terraform-aws-modules/vpc/aws`? " + SEMVER,),
        ),
        # Python: the lock decides (pyproject's own pins: test_pyproject_pins_are_the_locks)
        Pin(
            "the kfp SDK",
            "requirements.lock (kfp)",
            lock_version("kfp"),
            [rx(HELM_README, r"`kfp` (\d\S*),")],
        ),
        Pin(
            "the kserve SDK",
            "requirements.lock (kserve)",
            lock_version("kserve"),
            [rx(HELM_README, r"Python SDK (\d\S*)$"), rx(HELM_README, r"`kserve` (\d\S*) Python")],
        ),
        Pin(
            "the kserve SDK's minor",
            "requirements.lock (kserve)",
            lambda: minor(lock_version("kserve")()),
            sweeps=(r"\bKServe (\d+\.\d+)(?![.\d])",),
        ),
        Pin(
            "MLflow",
            "requirements.lock (mlflow)",
            lock_version("mlflow"),
            sweeps=(r"\bmlflow " + SEMVER + r"\b",),
        ),
        Pin(
            "Python",
            "pyproject.toml (requires-python)",
            lambda: first("pyproject.toml", r'^requires-python = ">=(\d+\.\d+)'),
            [
                rx(
                    "pyproject.toml",
                    r'^target-version = "py(\d+)"',
                    transform=lambda v: f"{v[0]}.{v[1:]}",
                ),
                rx("scripts/bootstrap.sh", r"^python=(\S+)$"),
            ],
            sweeps=(
                r"\bpython(3\.\d+)\b",
                r"\bPython (3\.\d+)\b",
                r"--python-version (3\.\d+)",
                r"--python (3\.\d+)\b",
                r'"--python", "(3\.\d+)"',
            ),
        ),
        Pin(
            "the lock command",
            "Makefile (target lock)",
            lambda: first("Makefile", r"^lock:.*\n\t(uv pip compile [^\n]+)$"),
            [rx("requirements.lock", r"\A[^\n]*\n#\s+(uv pip compile [^\n]+)$")],
        ),
        Pin(
            "uv",
            "scripts/bootstrap.sh (uv==)",
            lambda: first("scripts/bootstrap.sh", r"\buv==([\d.]+)"),
            [shell("scripts/test-infra.sh", "UV_VERSION")],
            sweeps=(r"\buv==(\d[\w.]*)",),
        ),
        # our images: pyproject's version, manifests/base/kustomization.yaml's references
        Pin(
            "the project's version (our images' tag)",
            "pyproject.toml ([project].version)",
            lambda: tomllib.loads(text("pyproject.toml"))["project"]["version"],
            [
                kustomize_tag(KUSTOMIZATION, "ghcr.io/symptom-dx/components"),
                kustomize_tag(KUSTOMIZATION, "ghcr.io/symptom-dx/serving"),
                kustomize_tag(KUSTOMIZATION, "ghcr.io/symptom-dx/ui"),
                yaml_value("helm/platform/kserve.yaml", "kserve", "storage", "tag"),
                tf(TF_PLATFORM, "image_tag"),
                tf(TF_ENV, "image_tag"),
                rx(HELM_README, r"\bTAG=(\d[\w.]*)"),
            ],
            sweeps=(
                r"\bghcr\.io/[\w-]+/(?:components|serving|ui|storage-initializer):(\d[\w.]*)",
                r"ersion tag \(`?v(\d[\w.]*?)`?\)",
            ),
        ),
        Pin(
            "our images",
            f"{KUSTOMIZATION} (images:) and storage-initializer (pipelines/compile.py)",
            lambda: frozenset(
                {ref.rsplit("/", 1)[1] for ref in image_names()} | {"storage-initializer"}
            ),
            [
                strings(
                    f"{TF_PLATFORM}/variables.tf",
                    r'variable\s+"images"\s*\{[^}]*?default\s*=\s*\[([^\]]*)\]',
                    "variable images",
                    as_set=True,
                ),
                rx(
                    ".github/workflows/images.yml",
                    r"^\s+target: \[([^\]]+)\]$",
                    transform=lambda v: frozenset(t.strip() for t in v.split(",")),
                ),
            ],
        ),
        Pin(
            "our images' registry",
            f"{KUSTOMIZATION} (images:)",
            our_registry,
            [
                rx("Makefile", r"^REGISTRY \?= (\S+)$"),
                rx("components/__init__.py", r'^DEFAULT_IMAGE = f"(\S+)/components:'),
                yaml_value(
                    "helm/platform/kserve.yaml",
                    "kserve",
                    "storage",
                    "image",
                    transform=lambda ref: ref.rsplit("/", 1)[0],
                ),
            ],
            sweeps=(r"\b(ghcr\.io/[\w-]+)/(?:components|serving|ui|storage-initializer)\b",),
        ),
    ]


def names() -> list[Pin]:
    storage = f"{TF_PLATFORM}/storage.tf"
    return [
        Pin(
            "the model bucket",
            f'{TF_ENV}/main.tf (coalesce(var.bucket_name, "${{var.name}}-models"))',
            lambda: (
                tf_default(TF_ENV, "name")()
                + first(
                    f"{TF_ENV}/main.tf", r'coalesce\(var\.bucket_name, "\$\{var\.name\}([^"]*)"\)'
                )
            ),
            [
                yaml_value("manifests/kubeflow/configmap.yaml", "data", "SYMPTOM_DX_BUCKET"),
                rx("manifests/mlflow/deployment.yaml", r"--artifacts-destination=s3://([^/\s]+)/"),
                rx("scripts/cluster/kserve.sh", r"storageUri: s3://([^/\s]+)/"),
                rx(HELM_README, r"\bBUCKET=(\S+)$"),
                rx("README.md", r"<alias>/([^/\s]+)/datasets/"),
                rx(TF_ENV_README, r"bucket `terraform output -raw bucket_name` \(`([^`]+)`\)"),
                rx(f"{TF_ENV}/variables.tf", r"\(([\w-]+) with the defaults\)"),
                rx(TFVARS, r'bucket_name\s*=\s*"(\S+?)-\d{12}"'),
                rx(CLUSTER_CONFTEST, r'^BUCKET = "([^"]+)"'),
                rx("tests/images/test_images.py", r'^MODELS_BUCKET = "([^"]+)"'),
                # symptom_dx's default (a step without SYMPTOM_DX_BUCKET) and `make run`'s
                # (which it exports to every step and to MLflow)
                rx(SETTINGS, r'bucket: str = Field\("([^"]+)"'),
                rx("tests/pipeline/test_make_run.py", r"cannot use bucket '([^']+)'"),
            ],
            sweeps=(r"\bs3://(symptom-dx[\w.-]*)/",),
        ),
        Pin(
            "the S3 Secret",
            f"{PIPELINE} (S3_SECRET)",
            py_constant(PIPELINE, "S3_SECRET"),
            [
                rx(
                    storage,
                    tf_block_name("kubernetes_secret_v1", r"model_store\w*"),
                    flags=re.S,
                    what="kubernetes_secret_v1 model_store*",
                ),
                rx(f"{TF_PLATFORM}/outputs.tf", r'local\.use_minio \? "([^"]+)" : null'),
                rx(
                    "manifests/components/minio/kustomization.yaml",
                    r"path: /secrets\n\s+value:\n\s+- name: (\S+)",
                ),
                rx(
                    "manifests/mlflow/deployment.yaml",
                    r"secretRef:\n\s+name: (\S+)\n\s+optional: true",
                ),
                rx(
                    HELM_README,
                    r"create secret generic (\S+) \\\n\s+--from-literal=AWS_ACCESS_KEY_ID",
                ),
                rx(HELM_README, r"annotate secret (\S+) --overwrite"),
                rx(CLUSTER_CONFTEST, r'secret\(namespace, "([^"]+)"'),
                rx("tests/images/test_images.py", r'secrets=\{"([^"]+)": s3_secret'),
                rx(
                    "tests/manifests/test_manifests.py",
                    r'"secretRef": \{"name": "([^"]+)", "optional"',
                ),
                rx("tests/pipeline/test_compile.py", r'secret\["secretName"\] == "([^"]+)"'),
                rx(
                    "tests/cluster/test_application.py",
                    r'account\["secrets"\] == \[\{"name": "([^"]+)"',
                ),
                rx(
                    "tests/infra/test_terraform_structure.py",
                    r"(?:create secret generic|annotate secret) ([\w-]+)",
                ),
            ],
        ),
        Pin(
            "the pipeline's MLflow Secret",
            f"{PIPELINE} (MLFLOW_SECRET)",
            py_constant(PIPELINE, "MLFLOW_SECRET"),
            [
                rx(
                    storage, tf_block_name("kubernetes_secret_v1", "mlflow_credentials"), flags=re.S
                ),
                rx(HELM_README, r"-n kubeflow create secret generic (\S+) \\"),
                rx("README.md", r"-n kubeflow (?:get|patch) secret (\S+)"),
                rx(CLUSTER_CONFTEST, r'secret\(\s*"kubeflow",\s*"([^"]+)"'),
                rx("tests/cluster/test_runbooks.py", r'get\("secret", "([^"]+)", "kubeflow"\)'),
            ],
        ),
        Pin(
            "MLflow's admin Secret",
            f"{storage} (kubernetes_secret_v1 mlflow_auth)",
            tf_name(storage, "kubernetes_secret_v1", "mlflow_auth"),
            [
                rx(
                    "manifests/mlflow/deployment.yaml",
                    r"secretRef:\n\s+name: (\S+)\n(?!\s+optional)",
                ),
                rx(HELM_README, r"-n mlflow create secret generic (\S+) \\"),
                rx("README.md", r"-n mlflow patch secret (\S+)"),
                rx(CLUSTER_CONFTEST, r'secret\(\s*"mlflow",\s*"([^"]+)"'),
                rx("tests/cluster/test_runbooks.py", r'get\("secret", "([^"]+)", "mlflow"\)'),
                rx("tests/manifests/test_manifests.py", r'\{"secretRef": \{"name": "([^"]+)"\}\}'),
            ],
        ),
        Pin(
            "MinIO's root Secret",
            f"{storage} (kubernetes_secret_v1 minio_root)",
            tf_name(storage, "kubernetes_secret_v1", "minio_root"),
            [
                rx(
                    HELM_README,
                    r"-n minio create secret generic (\S+) \\\n\s+--from-literal=rootUser",
                ),
                rx(HELM_README, r"^existingSecret: (\S+)$"),
                rx("helm/platform/minio.yaml", r"secret (\S+) \(keys rootUser"),
                rx(
                    "scripts/cluster/kserve.sh",
                    r"create secret generic (\S+) --from-literal=rootUser",
                ),
                rx("scripts/cluster/kserve/minio.yaml", r"secretKeyRef: \{name: ([\w-]+),"),
                rx(CLUSTER_CONFTEST, r'secret_data\("minio", "([^"]+)"\)'),
            ],
        ),
        Pin(
            "MinIO's workload-user Secret",
            f"{storage} (kubernetes_secret_v1 minio_workload_user)",
            tf_name(storage, "kubernetes_secret_v1", "minio_workload_user"),
            [
                rx(HELM_README, r"-n minio create secret generic (\S+) --from-literal=secretKey"),
                rx(HELM_README, r"existingSecret: ([\w-]+), existingSecretKey"),
                rx("helm/platform/minio.yaml", r"secret (\S+)\s+\(key secretKey\)"),
            ],
        ),
        Pin(
            "the MinIO workload user",
            f"{storage} (local.minio_workload_user)",
            tf_local(storage, "minio_workload_user"),
            [
                rx(HELM_README, r"accessKey: ([\w-]+),"),
                rx(HELM_README, r"--from-literal=AWS_ACCESS_KEY_ID=(\S+) \\"),
            ],
        ),
        Pin(
            "the MLflow admin user",
            f"{storage} (local.mlflow_admin_user)",
            tf_local(storage, "mlflow_admin_user"),
            [
                rx(HELM_README, r"--from-literal=MLFLOW_(?:AUTH_ADMIN|TRACKING)_USERNAME=(\S+) \\"),
                rx(CLUSTER_CONFTEST, r'^\s+admin = "([^"]+)"'),
            ],
        ),
        Pin(
            "the pipeline's ConfigMap",
            f"{PIPELINE} (CONFIG_MAP)",
            py_constant(PIPELINE, "CONFIG_MAP"),
            [
                yaml_value("manifests/kubeflow/configmap.yaml", "metadata", "name"),
                rx(PIPELINE_IR, r"configMapName: (\S+)$"),
            ],
        ),
        Pin(
            "the predictor's template ConfigMap",
            f"{SETTINGS} (DeploySettings.template_config_map)",
            py_field(SETTINGS, "template_config_map"),
            [
                rx(
                    "manifests/serving/kustomization.yaml", r"configMapGenerator:\n\s+- name: (\S+)"
                ),
                rx(
                    "manifests/serving/deployer-rbac.yaml",
                    r"resources: \[configmaps\]\n\s+resourceNames: \[(\S+)\]\n\s+verbs: \[get\]$",
                ),
            ],
        ),
        Pin(
            "the UI's knowledge ConfigMap",
            f"{SETTINGS} (DeploySettings.knowledge_config_map)",
            py_field(SETTINGS, "knowledge_config_map"),
            [
                rx(
                    "manifests/serving/deployer-rbac.yaml",
                    r"resourceNames: \[(\S+)\]\n\s+verbs: \[get, patch\]",
                ),
                rx("manifests/serving/deployer-rbac.yaml", r'object\.metadata\.name == "([^"]+)"'),
                rx(
                    "manifests/ui/deployment.yaml",
                    r"- name: knowledge\n\s+configMap:\n\s+name: (\S+)",
                ),
            ],
        ),
        Pin(
            "the model's name",
            "src/symptom_dx/contract.py (MODEL_NAME)",
            py_constant("src/symptom_dx/contract.py", "MODEL_NAME"),
            [
                yaml_value("manifests/serving/inferenceservice.yaml", "metadata", "name"),
                rx(
                    "manifests/monitoring/podmonitor-serving.yaml",
                    r"serving\.kserve\.io/inferenceservice: (\S+)",
                ),
                rx("ui/README.md", r"`SYMPTOM_DX_UI_MODEL_NAME` \| `([^`]+)`"),
            ],
            sweeps=(
                r"\b(disease-[a-z]+)(?=-(?:candidate|predictor)\b)",
                # (the parser model, served beside it, is pinned below)
                r"localhost:\d+/v2/models/(?!symptom-)([a-z][a-z0-9-]*)/",
                r'job=~\\?"\.\*([a-z][a-z0-9-]*)\.\*\\?"',
            ),
        ),
        Pin(
            "the parser model's name",
            "src/symptom_dx/contract.py (PARSER_MODEL_NAME)",
            py_constant("src/symptom_dx/contract.py", "PARSER_MODEL_NAME"),
            [rx("serving/README.md", r"localhost:\d+/v2/models/(symptom-[a-z]+)/infer")],
            sweeps=(r"localhost:\d+/v2/models/(symptom-[a-z0-9-]*)/",),
        ),
        Pin(
            "MLflow's usage reports (MLFLOW_DISABLE_TELEMETRY)",
            "src/symptom_dx/__init__.py",
            lambda: first(
                "src/symptom_dx/__init__.py",
                r'os\.environ\.setdefault\("MLFLOW_DISABLE_TELEMETRY", "(\w+)"\)',
            ),
            [
                rx(
                    "manifests/mlflow/deployment.yaml",
                    r"name: MLFLOW_DISABLE_TELEMETRY\n\s+value: \"(\w+)\"",
                ),
            ],
        ),
        Pin(
            "the AWS region",
            f"{TF_ENV}/variables.tf (variable region)",
            tf_default(TF_ENV, "region"),
            [
                yaml_value("manifests/kubeflow/configmap.yaml", "data", "AWS_DEFAULT_REGION"),
                rx(
                    "manifests/mlflow/deployment.yaml", r"name: AWS_DEFAULT_REGION\n\s+value: (\S+)"
                ),
                rx(TFVARS, r'^region\s*=\s*"([^"]+)"'),
                rx(HELM_README, r"\bREGION=(\S+)"),
                rx(HELM_README, r"dkr\.ecr\.([\w-]+)\.amazonaws\.com"),
            ],
        ),
        Pin(
            "the cluster's name",
            f"{TF_ENV}/variables.tf (variable name)",
            tf_default(TF_ENV, "name"),
            [
                rx(TFVARS, r'^name\s*=\s*"([^"]+)"'),
                rx(HELM_README, r"\bCLUSTER=(\S+)"),
                rx(HELM_README, r"amazonaws\.com/([\w-]+) TAG="),
                rx(TF_ENV_README, r":cluster/([\w-]+) to"),
                rx(TF_ENV_README, r"--cluster-name ([\w-]+)"),
            ],
        ),
        Pin(
            "kube-prometheus-stack's release name",
            f"{TF_PLATFORM}/helm.tf (helm_release kube_prometheus_stack)",
            tf_name(f"{TF_PLATFORM}/helm.tf", "helm_release", "kube_prometheus_stack"),
            [
                shell("scripts/cluster/monitoring.sh", "RELEASE"),
                rx("helm/platform/kube-prometheus-stack.yaml", r'release "([^"]+)"'),
            ],
            sweeps=(r"^\s+release: ([a-z][\w-]*)$",),
        ),
        # the download folder of the Kaggle files
        Pin(
            "the Kaggle download folder",
            "data/download.py (DEFAULT_DEST)",
            download_folder,
            [rx("data/download.py", r"\(default: (\S+)\)")],
            sweeps=(r'kaggle\.download\(\s*([^\n]*?"data[/"][^\n]*?)\)',),
            transform=joined_path,
        ),
        Pin(
            "the download root",
            "data/download.py (DEFAULT_DEST's parent)",
            lambda: download_folder().rsplit("/", 1)[0],
            [
                rx(".gitignore", r"^(data/downloads)/$"),
                rx("pyproject.toml", r'"(data/downloads)"', what="ruff extend-exclude"),
                rx("README.md", r"into `(data/downloads)/`"),
            ],
        ),
        Pin(
            "the Kaggle folder's name",
            "data/download.py (DEFAULT_DEST's name)",
            lambda: download_folder().rsplit("/", 1)[1],
            sweeps=tuple(rf"{d}/(kaggle[\w-]*)" for d in ("downloads", "shared/data", "~/data")),
        ),
    ]


def ours(path: str) -> bool:
    """Files that describe our servers: tests and benchmarks pick ports of their own, and the
    local Kubeflow Pipelines' MLMD server is not ours."""
    return not path.startswith(("tests/", "bench/", "scripts/cluster/kfp/"))


def ports() -> list[Pin]:
    serving_np = "manifests/serving/networkpolicy.yaml"
    runtime = "manifests/serving/servingruntime.yaml"
    return [
        Pin(
            "the model server's REST port",
            "kserve (constants.DEFAULT_HTTP_PORT: `python -m serving` without --http_port)",
            kserve_constant("DEFAULT_HTTP_PORT"),
            [
                rx(RUN_LOCAL, r"http_port: int = Field\((\d+)"),
                rx(runtime, r"--http_port=(\d+)"),
                rx(runtime, r"name: http1\n\s+containerPort: (\d+)"),
                rx(runtime, r'prometheus\.kserve\.io/port: "(\d+)"'),
                network_policy_ports(serving_np, "predictor"),
                rx("ui/settings.py", r'model_url: str = Field\("http://[^:"]+:(\d+)"'),
                rx("ui/README.md", r"`SYMPTOM_DX_UI_MODEL_URL` \| `http://[^:`]+:(\d+)`"),
                rx("Dockerfile", r"^EXPOSE (\d+) \d+$"),
                rx("Dockerfile", r"REST \(v1, v2, /metrics\) on (\d+)"),
                rx("serving/README.md", r"REST on (\d+)"),
                rx("README.md", r"KServe model server on (\d+) \(REST\)"),
                rx("README.md", r"REST \((\d+)\) and gRPC"),
            ],
            sweeps=(
                r"--http_port[= ](\d+)\b",
                r"\blocalhost:(\d+)/v2/models/",
                r"REST (\d+) and\b",
            ),
            sweep_paths=ours,
        ),
        Pin(
            "the model server's gRPC port",
            "kserve (constants.DEFAULT_GRPC_PORT: `python -m serving` without --grpc_port)",
            kserve_constant("DEFAULT_GRPC_PORT"),
            [
                rx(RUN_LOCAL, r"grpc_port: int = Field\((\d+)"),
                rx(runtime, r"--grpc_port=(\d+)"),
                rx(runtime, r"name: grpc\n\s+containerPort: (\d+)"),
                rx("Dockerfile", r"^EXPOSE \d+ (\d+)$"),
                rx("Dockerfile", r", gRPC v2 on (\d+)"),
                rx("serving/README.md", r"gRPC on (\d+)"),
                rx("README.md", r"(\d+) \(gRPC\)"),
                rx("README.md", r"gRPC \((\d+)\)"),
            ],
            sweeps=(
                r"--grpc_port[= ](\d+)\b",
                r"\bgRPC (\d{4,5})\b(?![.:\d])",
                r"-predictor\.[\w.-]+\.svc\.cluster\.local`?:(\d+)",
                r'InferenceGRPCClient\("[\d.]+:(\d+)"\)',
            ),
            sweep_paths=ours,
        ),
        Pin(
            "the UI's port",
            "ui/settings.py (UISettings.port)",
            lambda: first("ui/settings.py", r"^\s+port: int = Field\((\d+)"),
            [
                rx(RUN_LOCAL, r"ui_port: int = Field\((\d+)"),
                rx("manifests/ui/deployment.yaml", r"containerPort: (\d+)"),
                network_policy_ports(serving_np, "symptom-dx-ui"),
                rx("Dockerfile", r"^EXPOSE (\d+)$"),
                rx("Dockerfile", r"The page on (\d+)"),
                rx("ui/README.md", r"`SYMPTOM_DX_UI_PORT` \| `(\d+)`"),
                rx("ui/README.md", r"http://127\.0\.0\.1:(\d+) \(page\)"),
                rx("README.md", r"the UI on (\d+)"),
                rx("README.md", r"svc/symptom-dx-ui (\d+):80"),
            ],
        ),
        Pin(
            "MLflow's port",
            f"{SETTINGS} (MlflowSettings.tracking_uri)",
            lambda: first(SETTINGS, r'tracking_uri: str = Field\("http://[^:"]+:(\d+)"'),
            [
                rx("Makefile", r"^MLFLOW_PORT \?= (\d+)$"),
                rx(RUN_LOCAL, r"mlflow_port: int = Field\((\d+)"),
                rx("manifests/mlflow/deployment.yaml", r"--port=(\d+)$"),
                rx("manifests/mlflow/deployment.yaml", r"containerPort: (\d+)"),
                rx("manifests/mlflow/service.yaml", r"^\s+port: (\d+)$"),
                network_policy_ports("manifests/mlflow/networkpolicy.yaml", "mlflow"),
                rx("README.md", r"`MLFLOW_PORT`, default (\d+)"),
                rx("README.md", r"svc/mlflow (\d+):(\d+)", group=2),
                rx(CLUSTER_CONFTEST, r'port_forward\("mlflow", "svc/mlflow", (\d+)\)'),
            ],
            sweeps=(r"\bmlflow(?:\.mlflow(?:\.svc(?:\.cluster\.local)?)?)?:(\d+)\b",),
            sweep_paths=ours,
        ),
        Pin(
            "make run's S3 port",
            f"{RUN_LOCAL} (LocalRunSettings.s3_port)",
            lambda: first(RUN_LOCAL, r"s3_port: int = Field\((\d+)"),
            [rx("Makefile", r"^S3_PORT \?= (\d+)$"), rx("README.md", r"`S3_PORT`, default (\d+)")],
        ),
        Pin(
            "make run's Prometheus port",
            f"{RUN_LOCAL} (LocalRunSettings.prometheus_port)",
            lambda: first(RUN_LOCAL, r"prometheus_port: int = Field\((\d+)"),
            [
                rx("README.md", r"Prometheus on (\d+) \(`PROMETHEUS_PORT`"),
                rx("README.md", r"Prometheus on http://127\.0\.0\.1:(\d+) \(`PROMETHEUS_PORT`\)"),
                rx("README.md", r"http://127\.0\.0\.1:(\d+)/alerts"),
            ],
        ),
        Pin(
            "make run's Alertmanager port",
            f"{RUN_LOCAL} (LocalRunSettings.alertmanager_port)",
            lambda: first(RUN_LOCAL, r"alertmanager_port: int = Field\((\d+)"),
            [
                rx("README.md", r"Alertmanager on (\d+) \(`ALERTMANAGER_PORT`"),
                rx(
                    "README.md",
                    r"Alertmanager on http://127\.0\.0\.1:(\d+) \(`ALERTMANAGER_PORT`\)",
                ),
                rx("README.md", r"alerts are at http://127\.0\.0\.1:(\d+) and"),
            ],
        ),
        Pin(
            "MinIO's S3 port",
            f"{TF_PLATFORM}/main.tf (local.minio_host)",
            lambda: first(f"{TF_PLATFORM}/main.tf", r'minio_host\s*=\s*"[^":]+:(\d+)"'),
            [
                rx("scripts/cluster/kserve/minio.yaml", r'--address, ":(\d+)"'),
                rx(
                    "scripts/cluster/kserve/minio.yaml", r"name: api, (?:containerPort|port): (\d+)"
                ),
                rx(CLUSTER_CONFTEST, r'^MINIO = "[^":]+:(\d+)"'),
            ],
            sweeps=(
                r"\bminio\.minio\.svc(?:\.[\w$.]*)?:(\d+)\b",
                r"\$minio_ip:(\d+)\b",
                r"\{minio_ip\}:(\d+)\b",
            ),
            sweep_paths=lambda path: not path.startswith("bench/"),
        ),
    ]


# -- namespaces, Secrets and service accounts the manifests name ------------------------------


@functools.cache
def manifest_refs() -> tuple[tuple[str, str, str, str], ...]:
    """(kind, path, namespace, name): every Secret ('secret') and service account ('account')
    the application's manifests and the compiled pipeline name."""
    out = []
    for path in manifest_files():
        for doc in yaml_docs(path):
            ns = (doc.get("metadata") or {}).get("namespace", "")
            for patch in doc.get("patches", []):  # kustomize Components (components/minio)
                target = patch.get("target", {})
                for op in yaml.safe_load(patch.get("patch") or "[]") or []:
                    if isinstance(op, dict) and op.get("path") == "/secrets":
                        for entry in op["value"]:
                            out.append(("secret", path, target.get("namespace", ""), entry["name"]))
            for key, value in walk(doc):
                if key in ("secretRef", "secretKeyRef"):
                    out.append(("secret", path, ns, value["name"]))
                elif key == "serviceAccountName":
                    out.append(("account", path, ns, value))
                elif key == "subjects":
                    for subject in value:
                        if subject.get("kind") == "ServiceAccount":
                            out.append(("account", path, subject["namespace"], subject["name"]))
            if doc.get("kind") == "ServiceAccount":
                out.append(("account", path, ns, doc["metadata"]["name"]))
    pipelines_ns = tf_bucket_workloads()["pipelines"][0]  # KFP runs the steps there
    for doc in yaml_docs(PIPELINE_IR):
        for key, value in walk(doc):
            if key == "secretName":
                out.append(("secret", PIPELINE_IR, pipelines_ns, value))
    return tuple(out)


def manifest_files() -> list[str]:
    return [p for p in files() if p.startswith("manifests/") and p.endswith(".yaml")]


def refs(kind: str, path: str) -> Copy:
    def get() -> list[Found]:
        found = []
        for k, p, ns, name in manifest_refs():
            if (k, p) == (kind, path):
                found.append(Found(p, line_of(p, name), f"{ns}/{name}"))
        return found

    return Copy(path, what=f"{kind}s named", get=get)


def recipe_secrets() -> list[Found]:
    """'namespace/name' of every Secret helm/platform/README.md creates by hand."""
    body = text(HELM_README)
    made = set()
    for loop in re.finditer(r"^for ns in ([a-z -]+); do\n(.*?)^done", body, re.M | re.S):
        for name in re.findall(r"create secret generic (\S+)", loop.group(2)):
            made.update(f"{ns}/{name}" for ns in loop.group(1).split())
    for ns, name in re.findall(r"-n ([a-z][\w-]*) create secret generic (\S+)", body):
        made.add(f"{ns}/{name}")
    return [Found(HELM_README, 0, frozenset(made))]


def cluster_test_secrets() -> list[Found]:
    """'namespace/name' of the Secrets tests/cluster writes in the application's namespaces."""
    body = text(CLUSTER_CONFTEST)
    made = set()
    loops = re.findall(r'for namespace in \(([^)]*)\):\s*\n\s*secret\(namespace, "([^"]+)"', body)
    for group, name in loops:
        made.update(f"{ns}/{name}" for ns in re.findall(r'"([^"]+)"', group))
    for ns, name in re.findall(r'secret\(\s*"([^"]+)",\s*"([^"]+)",', body):
        made.add(f"{ns}/{name}")
    return [Found(CLUSTER_CONFTEST, 0, frozenset(made))]


def cluster_test_accounts() -> list[Found]:
    body = text(CLUSTER_CONFTEST)
    pattern = r'"create", "serviceaccount", "([^"]+)", "-n", "([^"]+)"'
    return [
        Found(CLUSTER_CONFTEST, line_at(body, m.start()), f"{m[2]}/{m[1]}")
        for m in re.finditer(pattern, body)
    ]


def platform() -> list[Pin]:
    main = f"{TF_PLATFORM}/main.tf"
    storage = f"{TF_PLATFORM}/storage.tf"
    secret_files = sorted({p for k, p, _, _ in manifest_refs() if k == "secret"})
    account_files = sorted({p for k, p, _, _ in manifest_refs() if k == "account"})
    return [
        Pin(
            "the namespaces created by hand",
            f"{main} (local.namespaces)",
            tf_namespaces,
            [
                rx(
                    HELM_README,
                    r"^for ns in ([a-z -]+); do\n\s+kubectl create namespace",
                    transform=lambda v: frozenset(v.split()),
                )
            ],
        ),
        Pin(
            "a namespace",
            f"{main} (local.namespaces; or Kubernetes' own, or a smoke test's scratch one)",
            lambda: tf_namespaces() | {"kube-system", "default"} | scratch_namespaces(),
            [
                py_field_copy(SETTINGS, "namespace"),
                shell("scripts/cluster/kserve.sh", "KSERVE_NS"),
                shell("scripts/cluster/kserve.sh", "CM_NS"),
                shell("scripts/cluster/monitoring.sh", "MON_NS"),
                strings(CLUSTER_CONFTEST, r"^NAMESPACES = \(([^)]*)\)", "NAMESPACES"),
            ],
            sweeps=(
                r"\b[a-z0-9-]+\.([a-z0-9-]+)\.svc\b",
                r"^\s+namespace: ([a-z0-9-]+)$",
                r"kubernetes\.io/metadata\.name: ([a-z0-9-]+)$",
                r'^(?:NS|APP_NS) = "([^"]+)"',
            ),
            member=True,
        ),
        Pin(
            "a Secret the application names",
            f"{storage} (every kubernetes_secret_v1, minio mode)",
            lambda: tf_secrets("minio"),
            [
                *(refs("secret", p) for p in secret_files),
                rx(
                    "scripts/cluster/kserve/minio.yaml",
                    r"secretKeyRef: \{name: ([\w-]+),",
                    transform=lambda name: f"minio/{name}",
                ),
            ],
            member=True,
        ),
        Pin(
            "a Secret the pipeline names (s3 mode)",
            f"{storage} (every kubernetes_secret_v1, s3 mode)",
            lambda: tf_secrets("s3"),
            [refs("secret", PIPELINE_IR)],  # KFP 2.14 cannot make them optional
            member=True,
        ),
        Pin(
            "the Secrets written by hand",
            f"{storage} (every kubernetes_secret_v1, minio mode)",
            lambda: tf_secrets("minio"),
            [Copy(HELM_README, what="kubectl create secret", get=recipe_secrets)],
        ),
        Pin(
            "the Secrets the cluster tests write",
            f"{storage} (every kubernetes_secret_v1 outside minio, minio mode)",
            lambda: frozenset(s for s in tf_secrets("minio") if not s.startswith("minio/")),
            [Copy(CLUSTER_CONFTEST, what="secret(...)", get=cluster_test_secrets)],
        ),
        Pin(
            "a service account the application runs as",
            f"{main} (local.bucket_workloads)",
            lambda: frozenset(f"{ns}/{sa}" for ns, sa in tf_bucket_workloads().values()),
            [
                *(refs("account", p) for p in account_files),
                Copy(CLUSTER_CONFTEST, what="create serviceaccount", get=cluster_test_accounts),
                rx(
                    HELM_README,
                    r"associations for `([\w-]+/[\w-]+)`, `([\w-]+/[\w-]+)` and\n`([\w-]+/[\w-]+)`",
                    group=0,
                    transform=lambda m: frozenset(re.findall(r"`([\w-]+/[\w-]+)`", m)),
                ),
            ],
            member=True,
        ),
    ]


def scratch_namespaces() -> frozenset[str]:
    """Namespaces the local cluster's smoke tests create for themselves (kserve.sh)."""
    made = set()
    for path in files():
        if path.startswith("scripts/cluster/") and path.endswith(".sh"):
            made.update(re.findall(r"\bcreate namespace ([a-z][\w-]*)\b", text(path)))
    return frozenset(made)


def py_field_copy(path: str, name: str) -> Copy:
    return rx(path, rf'^\s+{name}: [\w |]+ = Field\(\s*"([^"]+)"', what=f"{name}'s default")


# -- the tests -------------------------------------------------------------------------------------


PINS = [*versions(), *names(), *ports(), *platform()]


def sweeps_match(pin: Pin, path: str) -> bool:
    if not pin.sweep_paths(path):
        return False
    for pattern in pin.sweeps:
        needle, fold = literal(pattern)
        if needle and (needle.lower() if fold else needle) not in (
            folded(path) if fold else swept_text(path)
        ):
            continue
        if re.search(pattern, swept_text(path), re.M):
            return True
    return False


def cases() -> Iterator:
    for pin in PINS:
        for copy in pin.copies:
            yield case(pin, copy)
        for path in files() if pin.sweeps else ():
            if sweeps_match(pin, path):
                xfail = pin.sweep_xfail.get(path, "")
                copy = Copy(
                    path, pin.sweeps, "sweep", transform=pin.transform, xfail=xfail, swept=True
                )
                yield case(pin, copy)


def case(pin: Pin, copy: Copy) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=copy.xfail)] if copy.xfail else []
    return pytest.param(pin, copy, id=f"{pin.subject} | {copy.path} | {copy.what}", marks=marks)


@pytest.mark.parametrize(("pin", "copy"), list(cases()))
def test_every_copy_agrees_with_its_source(pin: Pin, copy: Copy) -> None:
    try:
        expected = pin.value()
        found = copy.found()
    except SourceError as e:
        pytest.fail(str(e), pytrace=False)
    if not found:
        pytest.fail(
            f"{copy.path}: no {pin.subject} found by {copy.what!r}: the copy changed form or "
            f"moved; follow it in {HERE}",
            pytrace=False,
        )
    for f in found:
        if (f.path, f.value) in pin.not_pins:
            continue
        if pin.member:
            ok = f.value <= expected if isinstance(f.value, frozenset) else f.value in expected
            says = f"one of {sorted(expected)}"
        else:
            ok = f.value == expected
            says = repr(sorted(expected) if isinstance(expected, frozenset) else expected)
        if not ok:
            value = sorted(f.value) if isinstance(f.value, frozenset) else f.value
            pytest.fail(
                f"{f.where()}: {pin.subject} is {value!r}, {pin.source} says {says}", pytrace=False
            )


def pyproject_pins() -> list[tuple[str, str, int]]:
    """(name, version, line) of every == pin in pyproject.toml's dependencies and extras."""
    body = text("pyproject.toml")
    project = tomllib.loads(body)["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pins = []
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement)
        if match:
            pins.append((match[1], match[2], line_of("pyproject.toml", f'"{requirement}"')))
    return sorted(set(pins))


@pytest.mark.parametrize(
    ("name", "version", "line"), [pytest.param(*pin, id=pin[0]) for pin in pyproject_pins()]
)
def test_pyproject_pins_are_the_locks(name: str, version: str, line: int) -> None:
    locked = lock().get(normalize(name))
    if locked != version:
        pytest.fail(
            f"pyproject.toml:{line}: {name} is {version!r}, requirements.lock says {locked!r} "
            "(make lock)",
            pytrace=False,
        )


def provider_ranges(path: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """provider -> (lowest, first excluded) of a versions.tf's required_providers."""
    ranges = {}
    pattern = r'(\w+) = \{\s*source\s*=\s*"[^"]+"\s*version\s*=\s*"([^"]+)"'
    for provider, constraint in re.findall(pattern, text(path)):
        parts = [c.strip() for c in constraint.split(",")]
        low, high = (0,), (10**9,)
        for part in parts:
            op, number = re.fullmatch(r"(~>|>=|<)\s*([\d.]+)", part).groups()
            version = tuple(int(x) for x in number.split("."))
            if op == "~>":  # ~> 6.13: >= 6.13, < 7.0
                low, high = version, (*version[:-2], version[-2] + 1)
            elif op == ">=":
                low = version
            else:
                high = version
        ranges[provider] = (low, high)
    return ranges


MODULE_VERSIONS = [p for p in files() if re.fullmatch(r"terraform/modules/\w+/versions\.tf", p)]


@pytest.mark.parametrize("path", MODULE_VERSIONS)
def test_the_roots_providers_are_ones_each_module_accepts(path: str) -> None:
    """The root pins the providers (~>), the modules declare what they accept (>=, <): every
    version the root allows must be one each module accepts."""
    root = provider_ranges(f"{TF_ENV}/versions.tf")
    for provider, (low, high) in provider_ranges(path).items():
        if provider not in root:
            pytest.fail(
                f"{path}: provider {provider} is not in {TF_ENV}/versions.tf", pytrace=False
            )
        root_low, root_high = root[provider]
        if root_low < low or root_high > high:
            pytest.fail(
                f"{path}: {provider} accepts {low}..<{high}, {TF_ENV}/versions.tf allows "
                f"{root_low}..<{root_high}",
                pytrace=False,
            )


# Version variables no case can check from this repository, and why.
UNCHECKED_VERSIONS = {
    (LIB, "PAUSE_VERSION"): "pause.c's version lives in the k8s.io/kubernetes module, not here",
    (LIB, "PROTOC_GEN_GO_VERSION"): "as upstream KFP's backend/api/Dockerfile, not in this repo",
}


def version_variables() -> list:
    """(file, name) of every version variable of lib.sh and of terraform's variables.tf."""
    found = [(LIB, n) for n in re.findall(r"^(\w+_VERSION)=", text(LIB), re.M)]
    for path in files():
        if path.startswith("terraform/") and path.endswith("variables.tf"):
            names = re.findall(r'^variable "(\w+_(?:version|tag))"', text(path), re.M)
            found += [(path, name) for name in names]
    return [pytest.param(path, name, id=f"{path}:{name}") for path, name in found]


@pytest.mark.parametrize(("path", "name"), version_variables())
def test_every_version_variable_is_a_source_or_a_checked_copy(path: str, name: str) -> None:
    """A version variable added to lib.sh or terraform without a case here fails, so 'checked
    nowhere' cannot come back quietly."""
    if (path, name) in UNCHECKED_VERSIONS:
        pytest.skip(UNCHECKED_VERSIONS[(path, name)])
    for pin in PINS:
        if pin.source.startswith(path) and re.search(rf"\((?:variable )?{name}\b", pin.source):
            return
        for copy in pin.copies:
            if copy.path == path and copy.what in (name, f"variable {name}"):
                return
    pytest.fail(f"{path}: {name} is neither a source nor a copy any case checks", pytrace=False)
