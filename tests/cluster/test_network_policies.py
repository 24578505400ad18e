"""NetworkPolicies enforced on the local cluster by kube-network-policies v0.8.0
(scripts/cluster/netpol.sh): scratch namespaces prove default-deny and a namespace+pod+port
allow rule for pod-to-pod traffic, and how traffic that does not come from a pod is treated;
then the application's own policies (MLflow, the predictor, the UI) against a pod of a scratch
namespace.

The enforcer queues the first packet of each new connection to or from a pod that a policy
selects, in the node's network namespace (nftables, hook postrouting), and judges it by the
policies; a source that is not a pod (the host, the node) matches no peer but an ipBlock. One
exemption, upstream's: packets of sockets owned by uid 0 in the node's network namespace
(`meta skuid 0 accept`: kubelet probes, the API server's proxy) are never queued. A port-forward
never crosses the node: containerd dials the port inside the pod's own network namespace.

Every connection here has a timeout of a few seconds; a dropped SYN is a timeout. Clients dial
from a pod's network namespace (nsenter, as root on this machine, like the cluster scripts), so
the source address is the pod's; a pod's own process (`probe get`) confirms the allowed path.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
from kube import CLUSTER, KUBECONFIG, KUBECTL, apply, get, kubectl, port_forward, script, wait_for
from testkit import cluster_setting

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(900),
    pytest.mark.local_cluster(
        reason="dials from inside pods' network namespaces on the node (nsenter, crictl) and "
        "reinstalls its policy enforcer (netpol.sh); on EKS the VPC CNI's network policy agent "
        "enforces the same policies: try a pod of another namespace against MLflow's Service"
    ),
]

_ctrd_sock, _bin, _netns = cluster_setting("CTRD_SOCK", "BIN_DIR", "NETNS_PATH")
PROBE = "localhost/symptomdx/probe:dev"
CONNECT_TIMEOUT = 3  # seconds, every connection of this file
SERVE_PORT, OTHER_PORT = 8080, 9090
# stdlib only, so any python3 will do (also as uid 65534, who cannot read the venv under /root)
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

# dial.py IP PORT: "open <HTTP status line>", "timeout" (nothing answered: dropped) or the error
DIAL = r"""
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((ip, port), timeout=float(sys.argv[3]))
except TimeoutError:
    print("timeout"); sys.exit()
except OSError as e:
    print(f"error {e}"); sys.exit()
with s:
    s.sendall(f"GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
    try:
        print("open", s.recv(200).decode(errors="replace").splitlines()[0])
    except (TimeoutError, IndexError, OSError) as e:
        print(f"open (no answer: {e!r})")
"""


def answered(result: str) -> bool:
    """A dial's result is an HTTP 200 answer."""
    return result.startswith("open HTTP/") and " 200 " in result


def dial_here(ip: str, port: int) -> str:
    """From this process (the host's network namespace)."""
    try:
        s = socket.create_connection((ip, port), timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return f"error {e}"
    s.close()
    return "open"


def dial_in(netns: str, ip: str, port: int, uid: int = 0) -> str:
    """From the network namespace at path ``netns``, as ``uid``."""
    argv = ["nsenter", f"--net={netns}", "--"]
    if uid:
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    argv += [PYTHON, "-c", DIAL, ip, str(port), str(CONNECT_TIMEOUT)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=CONNECT_TIMEOUT + 10)
    return (out.stdout.strip() or out.stderr.strip()).splitlines()[-1]


def crictl(*args: str) -> str:
    out = subprocess.run(
        [f"{_bin}/crictl", "--runtime-endpoint", f"unix://{_ctrd_sock}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr[-1000:]
    return out.stdout


def pod_netns(namespace: str, name: str) -> str:
    """The network namespace of a pod (its sandbox's, from the container runtime)."""
    uid = get("pod", name, namespace)["metadata"]["uid"]
    [sandbox] = crictl(
        "pods", "--label", f"io.kubernetes.pod.uid={uid}", "--state", "ready", "-q"
    ).split()
    info = json.loads(crictl("inspectp", sandbox))["info"]
    [path] = [
        n["path"] for n in info["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "network"
    ]
    return path


def pod_ip(namespace: str, name: str) -> str:
    return get("pod", name, namespace)["status"]["podIP"]


def probe_get(namespace: str, pod: str, url: str) -> subprocess.CompletedProcess:
    """`probe get URL` run by the pod's own process (its client gives up after 10 s)."""
    return subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(KUBECONFIG),
            "exec",
            "-n",
            namespace,
            pod,
            "--",
            "/probe",
            "get",
            url,
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def policy(namespace: str, name: str, spec: dict) -> None:
    apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def table() -> str:
    """What knp-nftables shows of the enforcer's table in the node ("no table ..." if none)."""
    out = subprocess.run(
        ["nsenter", f"--net={_netns}", "--", f"{_bin}/knp-nftables", "show"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout + out.stderr


def enforcer_running() -> bool:
    pods = get("pods", namespace="kube-system")["items"]
    return any(
        p["metadata"].get("labels", {}).get("app") == "kube-network-policies"
        and p["status"].get("phase") == "Running"
        for p in pods
    ) and table().startswith("table inet kube-network-policies")


@pytest.fixture(scope="module")
def enforcer(cluster):
    """kube-network-policies, which the cluster fixture installs for the whole session."""
    assert enforcer_running()


def pod(namespace: str, name: str, labels: dict, containers: list[dict]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "containers": containers,
        },
    }


def server_containers() -> list[dict]:
    """Two HTTP servers (the probe image), each with an HTTP readiness probe (the kubelet's)."""
    return [
        {
            "name": f"serve-{port}",
            "image": PROBE,
            "imagePullPolicy": "Never",
            "args": ["serve", f":{port}"],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 2},
        }
        for port in (SERVE_PORT, OTHER_PORT)
    ]


CLIENT = [{"name": "client", "image": PROBE, "imagePullPolicy": "Never", "args": ["sleep"]}]


class Scratch:
    """netpol-<id>-server: pod `server` (:8080, :9090) and its Service; netpol-<id>-allowed
    (label netpol-test=allowed): pods `client` (role=client) and `stranger` (role=other);
    netpol-<id>-other: pod `client` (role=client)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.server_ns = f"netpol-{tag}-server"
        self.allowed_ns = f"netpol-{tag}-allowed"
        self.other_ns = f"netpol-{tag}-other"
        self.namespaces = (self.server_ns, self.allowed_ns, self.other_ns)

    def create(self) -> None:
        for ns in self.namespaces:
            kubectl("create", "namespace", ns)
        kubectl("label", "namespace", self.allowed_ns, "netpol-test=allowed")
        apply(pod(self.server_ns, "server", {"app": "server"}, server_containers()))
        apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "server", "namespace": self.server_ns},
                "spec": {
                    "selector": {"app": "server"},
                    "ports": [{"port": 80, "targetPort": SERVE_PORT}],
                },
            }
        )
        apply(pod(self.allowed_ns, "client", {"role": "client"}, CLIENT))
        apply(pod(self.allowed_ns, "stranger", {"role": "other"}, CLIENT))
        apply(pod(self.other_ns, "client", {"role": "client"}, CLIENT))
        for ns, name in self.pods():
            kubectl("wait", "-n", ns, f"pod/{name}", "--for=condition=Ready", "--timeout=120s")

    def pods(self) -> list[tuple[str, str]]:
        return [
            (self.server_ns, "server"),
            (self.allowed_ns, "client"),
            (self.allowed_ns, "stranger"),
            (self.other_ns, "client"),
        ]

    def delete(self) -> None:
        kubectl(
            "delete",
            "namespace",
            *self.namespaces,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=180s",
        )


@pytest.fixture(scope="module")
def scratch(enforcer):
    s = Scratch()
    try:
        s.create()
        yield s
    finally:
        s.delete()


def eventually(check, what: str, timeout: float = 30):
    """The enforcer syncs a policy within a second or two: poll a dial until it says so."""
    return wait_for(check, timeout, what, every=0.5)


# -- pod to pod --------------------------------------------------------------------------------
def test_default_deny_ingress_blocks_a_client_of_another_namespace(scratch):
    s = scratch
    server = pod_ip(s.server_ns, "server")
    allowed, other = pod_netns(s.allowed_ns, "client"), pod_netns(s.other_ns, "client")
    # no policy yet: everybody gets in, on both ports
    kubectl("delete", "networkpolicy", "--all", "-n", s.server_ns)
    for netns in (allowed, other):
        for port in (SERVE_PORT, OTHER_PORT):
            eventually(
                lambda n=netns, p=port: answered(dial_in(n, server, p)),
                "an open server",
            )
    policy(s.server_ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    eventually(
        lambda: dial_in(other, server, SERVE_PORT) == "timeout", "default-deny to take effect"
    )
    for netns in (allowed, other):
        for port in (SERVE_PORT, OTHER_PORT):
            assert dial_in(netns, server, port) == "timeout", (netns, port)
    # through the Service too (kube-proxy's DNAT happens before the enforcer's hook)
    service = get("service", "server", s.server_ns)["spec"]["clusterIP"]
    assert dial_in(other, service, 80) == "timeout"
    # the pod's own client, not only its network namespace
    out = probe_get(s.other_ns, "client", f"http://{server}:{SERVE_PORT}/")
    assert out.returncode == 1 and "Timeout" in out.stdout, out.stdout + out.stderr
    # the server is in the enforcer's set (its new connections go to NFQUEUE), the clients not
    shown = table()
    assert server in shown and pod_ip(s.other_ns, "client") not in shown, shown


def test_a_namespace_and_pod_selector_rule_opens_one_port_to_one_client(scratch):
    s = scratch
    server = pod_ip(s.server_ns, "server")
    policy(s.server_ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    policy(
        s.server_ns,
        "allow-client",
        {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {  # one peer: both selectors must match (namespace AND pod)
                            "namespaceSelector": {"matchLabels": {"netpol-test": "allowed"}},
                            "podSelector": {"matchLabels": {"role": "client"}},
                        }
                    ],
                    "ports": [{"port": SERVE_PORT, "protocol": "TCP"}],
                }
            ],
        },
    )
    client = pod_netns(s.allowed_ns, "client")
    eventually(lambda: answered(dial_in(client, server, SERVE_PORT)), "the allowed client in")
    out = probe_get(s.allowed_ns, "client", f"http://{server}:{SERVE_PORT}/")
    assert out.returncode == 0 and "hello from server" in out.stdout, out.stdout + out.stderr
    service = get("service", "server", s.server_ns)["spec"]["clusterIP"]
    assert answered(dial_in(client, service, 80))  # Service port 80 -> 8080
    # the other port stays closed to it
    assert dial_in(client, server, OTHER_PORT) == "timeout"
    # same pod label, other namespace; same namespace, other pod label: both kept out
    assert dial_in(pod_netns(s.other_ns, "client"), server, SERVE_PORT) == "timeout"
    assert dial_in(pod_netns(s.allowed_ns, "stranger"), server, SERVE_PORT) == "timeout"


# -- what does not come from a pod -------------------------------------------------------------
def test_host_and_node_traffic_under_default_deny(scratch):
    s = scratch
    policy(s.server_ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    kubectl("delete", "networkpolicy", "allow-client", "-n", s.server_ns, "--ignore-not-found")
    eventually(
        lambda: (
            dial_in(pod_netns(s.allowed_ns, "client"), pod_ip(s.server_ns, "server"), SERVE_PORT)
            == "timeout"
        ),
        "default-deny only",
    )
    # kubelet probes (root in the node's network namespace) pass: a pod started under
    # default-deny becomes Ready on both ports, which no rule lets in
    kubectl("delete", "pod", "late", "-n", s.server_ns, "--ignore-not-found", "--wait=true")
    apply(pod(s.server_ns, "late", {"app": "late"}, server_containers()))
    kubectl("wait", "-n", s.server_ns, "pod/late", "--for=condition=Ready", "--timeout=60s")
    late = pod_ip(s.server_ns, "late")
    assert late in table()
    # ... and stays Ready (a failed probe every 2 s would flip it within seconds)
    time.sleep(6)
    conditions = {
        c["type"]: c["status"] for c in get("pod", "late", s.server_ns)["status"]["conditions"]
    }
    assert conditions["Ready"] == "True", conditions
    # any root socket of the node passes (upstream's `meta skuid 0 accept`); another uid does not
    assert answered(dial_in(_netns, late, OTHER_PORT))
    assert dial_in(_netns, late, OTHER_PORT, uid=65534) == "timeout"
    # the API server's proxy (root in the node) passes
    answer = kubectl(
        "get", "--raw", f"/api/v1/namespaces/{s.server_ns}/pods/late:{OTHER_PORT}/proxy/"
    )
    assert "hello from late" in answer
    # a port-forward passes: containerd dials inside the pod's own network namespace
    with port_forward(s.server_ns, "pod/late", OTHER_PORT) as url:
        assert httpx.get(f"{url}/", timeout=CONNECT_TIMEOUT).text == "hello from late\n"
    # the host (10.231.0.1, routed through the node, not a pod): dropped, to the pod and to
    # the Service alike, as the application's tests' ClusterIP requests would be
    assert dial_here(late, SERVE_PORT) == "timeout"
    service = get("service", "server", s.server_ns)["spec"]["clusterIP"]
    assert dial_here(service, 80) == "timeout"
    kubectl("delete", "pod", "late", "-n", s.server_ns, "--wait=true")


def test_uninstall_removes_the_table_and_enforcement_and_install_restores_it(scratch):
    s = scratch
    policy(s.server_ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    server = pod_ip(s.server_ns, "server")
    other = pod_netns(s.other_ns, "client")
    eventually(lambda: dial_in(other, server, SERVE_PORT) == "timeout", "default-deny")
    out = subprocess.run(
        ["bash", str(CLUSTER / "netpol.sh"), "uninstall"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # the enforcer removed its own table when it stopped (STOPSIGNAL SIGINT in its image)
    assert "no table inet kube-network-policies" in out.stdout + out.stderr
    assert table().startswith("no table")
    assert answered(dial_in(other, server, SERVE_PORT))  # applied, not enforced
    script("netpol.sh", "install", timeout=1800)
    eventually(lambda: dial_in(other, server, SERVE_PORT) == "timeout", "enforcement again")


# -- the application's own policies (manifests/serving, manifests/mlflow) ----------------------
def _running_pod_ip(namespace: str, selector: str) -> str:
    pods = get("pods", namespace=namespace, check=True).get("items", [])
    match = dict(part.split("=", 1) for part in selector.split(","))
    for p in pods:
        labels = p["metadata"].get("labels", {})
        running = p["status"].get("phase") == "Running" and p["status"].get("podIP")
        if running and all(labels.get(k) == v for k, v in match.items()):
            return p["status"]["podIP"]
    raise AssertionError(f"no running pod {selector} in {namespace}")


def test_app_policies_keep_a_scratch_namespace_out(app, champion, scratch):
    """MLflow :5000, the predictor :8080 and the UI :7860 refuse a pod of a namespace that no
    policy names; port-forwards (the operators' way, and the app fixture's to MLflow) still work,
    the host's requests to MLflow's Service do not."""
    client = pod_netns(scratch.other_ns, "client")
    # the client itself is fine: CoreDNS (no policy) answers it on TCP 53
    dns = get("service", "kube-dns", "kube-system")["spec"]["clusterIP"]
    assert dial_in(client, dns, 53).startswith("open")
    kubectl("-n", "kserve-inference", "rollout", "status", "deploy/symptom-dx-ui", "--timeout=300s")
    targets = {
        "mlflow pod": (_running_pod_ip("mlflow", "app.kubernetes.io/name=mlflow"), 5000),
        "mlflow service": (get("service", "mlflow", "mlflow")["spec"]["clusterIP"], 5000),
        "predictor pod": (
            _running_pod_ip(
                "kserve-inference", "serving.kserve.io/inferenceservice=disease-classifier"
            ),
            8080,
        ),
        "ui pod": (
            _running_pod_ip("kserve-inference", "app.kubernetes.io/name=symptom-dx-ui"),
            7860,
        ),
    }
    for what, (ip, port) in targets.items():
        if what.endswith("pod"):  # the enforcer's set holds pod addresses, not Services'
            assert ip in table(), f"{what} {ip} not in the enforcer's set"
        assert dial_in(client, ip, port) == "timeout", what
    # the host: MLflow's Service, which no policy opens to it, drops it (the predictor's and the
    # UI's answer it only through the tests' own policy, conftest.TEST_HOST_POLICY) ...
    assert dial_here(targets["mlflow service"][0], 5000) == "timeout"
    # ... a port-forward is not
    assert httpx.get(f"{app.mlflow_url}/health", timeout=CONNECT_TIMEOUT).status_code == 200
    with port_forward("kserve-inference", "svc/disease-classifier-predictor", 80) as url:
        assert httpx.get(f"{url}/v2/health/ready", timeout=CONNECT_TIMEOUT).status_code == 200
