"""The local cluster of scripts/cluster/ as the tests use it: kubectl, service addresses (the
host routes the cluster's pod and service ranges into the node's network namespace, so a
ClusterIP answers from here), port-forwards to 127.0.0.1, and a client that polls a Service."""

from __future__ import annotations

import contextlib
import json
import re
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

CLUSTER = REPO / "scripts" / "cluster"


_state, _bin = cluster_setting("STATE_DIR", "BIN_DIR")
STATE = Path(_state)
KUBECONFIG = STATE / "kubeconfig"
KUBECTL = Path(_bin) / "kubectl"


def script(name: str, *args: str, env: dict | None = None, timeout: float = 3600) -> str:
    """Run scripts/cluster/<name>; its log on failure."""
    import os

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
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=300,
    )
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


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (AssertionError, KeyError, IndexError, httpx.HTTPError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


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


def service_account_kubeconfig(namespace: str, account: str):
    """A kubeconfig that acts as the service account (a short-lived token)."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").strip()
    config = yaml.safe_load(KUBECONFIG.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path = KUBECONFIG.with_name(f"kubeconfig-{account}")
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
