"""The cluster the tests check and how they reach it: kubectl, Services, port-forwards to
127.0.0.1, and a client that polls a Service.

The cluster is the one ``KUBECONFIG`` names (``KUBE_CONTEXT`` picks a context of that file), or
the local cluster of scripts/cluster/ when it is unset. On the local cluster the host routes the
cluster's pod and service ranges into the node's network namespace, so a ClusterIP answers from
here; any other cluster's Services are reached through port-forwards, the operator's way in."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from testkit import REPO, cluster_setting

from pipelines.local_stack.services import free_port
from symptom_dx.deadlines import poll_until

CLUSTER = REPO / "scripts" / "cluster"

_state, _bin, _local_kubeconfig = cluster_setting("STATE_DIR", "BIN_DIR", "KUBECONFIG_FILE")
STATE = Path(_state)
LOCAL_KUBECONFIG = Path(_local_kubeconfig)

# What this session writes for itself (the kubeconfig of KUBE_CONTEXT, service accounts'
# tokens): never beside the operator's own kubeconfig.
SCRATCH = REPO / ".state" / "cluster-tests"

NAMED_KUBECONFIG = os.environ.get("KUBECONFIG", "")
CONTEXT = os.environ.get("KUBE_CONTEXT", "")
_named = Path(NAMED_KUBECONFIG).expanduser().absolute() if NAMED_KUBECONFIG else LOCAL_KUBECONFIG
LOCAL = _named.resolve() == LOCAL_KUBECONFIG.resolve()
# What kubectl and every client the tests start are given: with KUBE_CONTEXT, a copy of that one
# context made current (select_target writes it), as the clients read the current context.
KUBECONFIG = SCRATCH / "kubeconfig" if CONTEXT else _named
# The local cluster's own build (build.sh makes it before the cluster starts); for another
# cluster that one if this machine has it, else the kubectl on PATH.
_own_kubectl = Path(_bin) / "kubectl"
KUBECTL = (
    _own_kubectl
    if LOCAL or _own_kubectl.is_file()
    else Path(shutil.which("kubectl") or _own_kubectl)
)


def describe_target() -> str:
    """The cluster checked, as the report's header and the refusals name it."""
    if LOCAL:
        return f"the local cluster of scripts/cluster/ ({LOCAL_KUBECONFIG})"
    context = f", context {CONTEXT}" if CONTEXT else ""
    return f"KUBECONFIG={NAMED_KUBECONFIG}{context} (kubectl {KUBECTL})"


def select_target(reach: bool) -> str:
    """Why the tests cannot check the cluster KUBECONFIG names, in one line ('' if they can);
    writes KUBE_CONTEXT's kubeconfig. ``reach``: also ask the cluster whether it answers."""
    if LOCAL:  # the cluster fixture starts it
        return "KUBE_CONTEXT picks a context of a KUBECONFIG you name" if CONTEXT else ""
    where = f"KUBECONFIG={NAMED_KUBECONFIG}"
    if os.pathsep in NAMED_KUBECONFIG:
        return f"{where} lists several files: name the one of the cluster to check"
    if not _named.is_file():
        return f"{where}: no such file"
    if not KUBECTL.is_file():
        return f"no kubectl: neither {_own_kubectl} nor one on PATH"
    if CONTEXT:
        out = _run_kubectl(_named, "config", "view", "--minify", "--flatten", "--context", CONTEXT)
        if out.returncode:
            return f"{where}, KUBE_CONTEXT={CONTEXT}: {_last_line(out.stderr)}"
        config = yaml.safe_load(out.stdout)
        config["current-context"] = CONTEXT
        _write_private(KUBECONFIG, yaml.safe_dump(config))
    if reach:
        out = _run_kubectl(KUBECONFIG, "get", "--raw", "/readyz", "--request-timeout=20s")
        if out.returncode:
            return f"the cluster of {describe_target()} does not answer: {_last_line(out.stderr)}"
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _write_private(path: Path, text: str) -> None:
    SCRATCH.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)


def _run_kubectl(
    kubeconfig: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=300,
    )


def script(name: str, *args: str, env: dict | None = None, timeout: float = 3600) -> str:
    """Run scripts/cluster/<name>; its log on failure. They act on the local cluster whatever
    KUBECONFIG says, so never while another is checked."""
    assert LOCAL, f"scripts/cluster/{name} acts on the local cluster, not on {describe_target()}"
    out = subprocess.run(
        ["bash", str(CLUSTER / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert out.returncode == 0, f"{name} {' '.join(args)} failed:\n{out.stderr[-4000:]}"
    return out.stdout


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    out = _run_kubectl(KUBECONFIG, *args, input=input)
    if check:
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr[-2000:]}"
    return out.stdout if check else out.stdout + out.stderr


def get(kind: str, name: str = "", namespace: str = "", check: bool = True) -> dict:
    args = ["get", kind, *([name] if name else []), "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    text = kubectl(*args, check=check)
    try:
        return json.loads(text)
    except ValueError:
        return {}


def apply(manifest: dict | str, server_side: bool = False) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    kubectl("apply", *(["--server-side"] if server_side else []), "-f", "-", input=text)


def service_ip(namespace: str, name: str) -> str:
    return get("service", name, namespace)["spec"]["clusterIP"]


_forwards = contextlib.ExitStack()
_forwarded: dict[tuple[str, str, int], str] = {}


def service_address(namespace: str, name: str, port: int) -> str:
    """host:port at which this machine reaches ``port`` of the Service: its ClusterIP on the
    local cluster, else a port-forward kept until close_forwards (it follows one pod, so it
    stands for the Service only while the pods stay)."""
    if LOCAL:
        return f"{service_ip(namespace, name)}:{port}"
    key = (namespace, name, port)
    if key not in _forwarded:
        url = _forwards.enter_context(port_forward(namespace, f"svc/{name}", port))
        _forwarded[key] = url.removeprefix("http://")
    return _forwarded[key]


def service_url(namespace: str, name: str, port: int) -> str:
    return f"http://{service_address(namespace, name, port)}"


def close_forwards() -> None:
    _forwards.close()
    _forwarded.clear()


# The local node never pulls (its images are loaded into it, a missing one fails at once);
# another cluster's nodes pull ours from the registry manifests/ names.
IMAGE_PULL_POLICY = "Never" if LOCAL else "IfNotPresent"


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 2) -> object:
    def answer() -> object:
        try:
            return check()
        except (AssertionError, KeyError, IndexError, httpx.HTTPError):  # not there yet
            return None

    result = poll_until(answer, timeout, every)
    assert result, f"timed out after {timeout:.0f} s waiting for {what}"
    return result


@contextlib.contextmanager
def port_forward(namespace: str, target: str, port: int) -> Iterator[str]:
    """``kubectl port-forward`` on 127.0.0.1 (the operator's way in); yields the base URL.

    A port-forward to a Service ends with the pod it picked: when that pod is replaced (a
    rollout), it is started again on the same local port."""
    local = free_port()
    argv = [
        str(KUBECTL),
        "--kubeconfig",
        str(KUBECONFIG),
        "-n",
        namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        target,
        f"{local}:{port}",
    ]
    stop = threading.Event()
    current: list[subprocess.Popen] = []

    def keep_forwarding() -> None:
        while not stop.is_set():
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            current[:] = [proc]
            while proc.poll() is None and not stop.is_set():
                time.sleep(0.2)
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            time.sleep(0.5)

    thread = threading.Thread(target=keep_forwarding, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{local}"
    try:
        wait_for(lambda: _listening(local), 30, f"the port-forward to {namespace}/{target}", 0.2)
        yield url
    finally:
        stop.set()
        thread.join(15)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Poller:
    """A client asking ``url`` one v2 infer after another while a test changes the cluster:
    every answer that is not a 200 with a ranking counts as a failure."""

    url: str
    body: dict
    interval: float = 0.02
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                self.sent += 1
                try:
                    answer = client.post(self.url, json=self.body)
                    if answer.status_code != 200 or "outputs" not in answer.json():
                        self.failures.append(f"HTTP {answer.status_code}: {answer.text[:120]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")
                time.sleep(self.interval)


def events(namespace: str) -> str:
    return kubectl("get", "events", "-n", namespace, "-o", "custom-columns=MSG:.message")


def pod_logs(namespace: str, selector: str, container: str = "") -> str:
    args = ["logs", "-n", namespace, "-l", selector, "--tail=200"]
    if container:
        args += ["-c", container]
    return kubectl(*args, check=False)


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def state_path(*parts: str) -> Path:
    return STATE.joinpath(*parts)


def service_account_kubeconfig(namespace: str, account: str) -> Path:
    """A kubeconfig that acts as the service account (a short-lived token)."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").strip()
    config = yaml.safe_load(KUBECONFIG.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path = SCRATCH / f"kubeconfig-{account}"
    _write_private(path, yaml.safe_dump(config))
    return path
