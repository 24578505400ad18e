"""Run a container of the rendered manifests with Docker, as a kubelet would run it.

From the pod template and the container spec this takes the image, ``command`` (the entrypoint)
and ``args``, ``env`` and ``envFrom`` (Secrets and ConfigMaps the test supplies), the user,
group and fsGroup, a read-only root, dropped capabilities, no privilege escalation, the CPU and
memory limits, and the volumes (``emptyDir`` as tmpfs, the rest bound from folders the test
supplies). Probes are run against the container's ports.

The only substitutions, forced by the network rule (host network, servers on 127.0.0.1 only):
``0.0.0.0`` becomes ``127.0.0.1``, and cluster DNS names the test maps (``replace``) become
loopback addresses. Ports stay the manifests' own.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pipelines.local_stack.services import poll

LABEL = "symptom-dx-test"


@dataclass
class Pod:
    """One running container and the ports of its spec."""

    name: str
    container_id: str
    ports: dict[str, int] = field(default_factory=dict)

    def logs(self) -> str:
        out = subprocess.run(["docker", "logs", self.container_id], capture_output=True, text=True)
        return out.stdout + out.stderr

    def running(self) -> bool:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", self.container_id],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() == "true"

    def exit_code(self) -> int:
        out = subprocess.run(
            ["docker", "wait", self.container_id], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip())

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.container_id], capture_output=True)

    def url(self, port: str | int = "http") -> str:
        return f"http://127.0.0.1:{self.port(port)}"

    def port(self, port: str | int) -> int:
        return self.ports[port] if isinstance(port, str) else port


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


def _substitute(value: str, replace: Mapping[str, str]) -> str:
    for old, new in {"0.0.0.0": "127.0.0.1", **replace}.items():
        value = value.replace(old, new)
    return value


def docker_argv(
    pod_spec: dict,
    container: dict,
    *,
    name: str,
    secrets: Mapping[str, Mapping[str, str]] = {},
    config_maps: Mapping[str, Mapping[str, str]] = {},
    volumes: Mapping[str, Path] = {},
    replace: Mapping[str, str] = {},
    extra_mounts: Mapping[Path, str] = {},
    image: str | None = None,
) -> list[str]:
    """``docker run`` arguments for ``container`` of ``pod_spec`` (see the module docstring).

    ``extra_mounts`` bind more host folders (``{host: path}``) where the cluster would put
    them (KServe's /mnt/models)."""
    security = {**pod_spec.get("securityContext", {}), **container.get("securityContext", {})}
    argv = ["docker", "run", "-d", "--name", name, "--label", f"{LABEL}=1", "--network", "host"]
    uid = security.get("runAsUser")
    if security.get("runAsNonRoot"):
        assert uid not in (None, 0), f"{name}: runAsNonRoot needs a numeric non-root runAsUser"
    if uid is not None:
        gid = security.get("runAsGroup")
        argv += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    if "fsGroup" in pod_spec.get("securityContext", {}):
        argv += ["--group-add", str(pod_spec["securityContext"]["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    for cap in security.get("capabilities", {}).get("drop", []):
        argv += ["--cap-drop", cap]
    if security.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        argv += ["--memory", str(memory_bytes(limits["memory"]))]
    if "cpu" in limits:
        argv += ["--cpus", cpus(str(limits["cpu"]))]

    for source in container.get("envFrom", []):
        ref = source.get("secretRef") or source.get("configMapRef")
        store = secrets if "secretRef" in source else config_maps
        if ref["name"] not in store:
            assert ref.get("optional"), f"{name}: envFrom {ref['name']} is not optional"
            continue
        for key, value in store[ref["name"]].items():
            argv += ["-e", f"{key}={value}"]
    for var in container.get("env", []):
        if "value" in var:
            argv += ["-e", f"{var['name']}={_substitute(str(var['value']), replace)}"]
            continue
        ref = var["valueFrom"].get("secretKeyRef") or var["valueFrom"].get("configMapKeyRef")
        store = secrets if "secretKeyRef" in var["valueFrom"] else config_maps
        if ref["name"] in store and ref["key"] in store[ref["name"]]:
            argv += ["-e", f"{var['name']}={store[ref['name']][ref['key']]}"]
        else:
            assert ref.get("optional"), f"{name}: {var['name']} needs {ref['name']}/{ref['key']}"

    pod_volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = pod_volumes[mount["name"]]
        mode = "ro" if mount.get("readOnly") else "rw"
        if "emptyDir" in volume:
            argv += ["--tmpfs", f"{mount['mountPath']}:rw,exec,mode=1777"]
        else:
            assert mount["name"] in volumes, f"{name}: the test must supply volume {mount['name']}"
            argv += ["-v", f"{volumes[mount['name']]}:{mount['mountPath']}:{mode}"]
    for host, path in extra_mounts.items():
        argv += ["-v", f"{host}:{path}"]

    command = container.get("command", [])
    if command:
        argv += ["--entrypoint", command[0]]
    argv.append(image or container["image"])
    argv += [_substitute(a, replace) for a in [*command[1:], *container.get("args", [])]]
    return argv


def start_pod(pod_spec: dict, container: dict, **kwargs: object) -> Pod:
    """Start ``container`` detached (``docker_argv``'s keyword arguments)."""
    name = f"sdx-{container['name']}-{uuid.uuid4().hex[:6]}"
    argv = docker_argv(pod_spec, container, name=name, **kwargs)
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 0, f"docker run failed: {out.stderr}"
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    return Pod(name, out.stdout.strip(), ports)


@contextlib.contextmanager
def running_pod(pod_spec: dict, container: dict, **kwargs: object) -> Iterator[Pod]:
    pod = start_pod(pod_spec, container, **kwargs)
    try:
        yield pod
    finally:
        pod.stop()


def probe_ok(pod: Pod, probe: dict) -> bool:
    if "httpGet" in probe:
        get = probe["httpGet"]
        url = f"http://127.0.0.1:{pod.port(get['port'])}{get.get('path', '/')}"
        try:
            return 200 <= poll(url, timeout=probe.get("timeoutSeconds", 1)).status_code < 400
        except httpx.HTTPError:
            return False
    raise AssertionError(f"probe kind not handled: {sorted(probe)}")


def wait_ready(pod: Pod, container: dict, ready: dict | None = None, timeout: float = 0) -> float:
    """Wait as the kubelet would: the startup probe's budget (or ``timeout``) for the readiness
    probe (or ``ready``) to pass; then the liveness probe must pass too. Returns the seconds."""
    startup = container.get("startupProbe", {})
    budget = timeout or startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    ready = ready or container.get("readinessProbe") or startup
    assert ready, f"{pod.name}: no readiness probe to wait for"
    started = time.monotonic()
    while not probe_ok(pod, ready):
        assert pod.running(), f"{pod.name} exited:\n{pod.logs()[-3000:]}"
        assert time.monotonic() - started < budget, (
            f"{pod.name} not ready in {budget} s:\n{pod.logs()[-3000:]}"
        )
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    if "livenessProbe" in container:
        assert probe_ok(pod, container["livenessProbe"]), f"{pod.name}: liveness probe fails"
    return elapsed


def remove_leftovers() -> None:
    """Containers an interrupted earlier run left (by their label)."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}"], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def named(objects: list[dict], kind: str, name: str) -> dict:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def deployment_pod(objects: list[dict], name: str, container: str) -> tuple[dict, dict]:
    spec = named(objects, "Deployment", name)["spec"]["template"]["spec"]
    [found] = [c for c in spec["containers"] if c["name"] == container]
    return spec, found


def readable_copy(src, dest):
    """A copy the images' uid 1000 can read (pytest's tmp folders are private to root)."""
    shutil.copytree(src, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
