"""Put a registered model behind the served InferenceService, verified live, nothing by hand.

One implementation behind the pipeline's ``deploy`` step and ``symptom-dx deploy | rollback |
status``. KServe's Standard (raw deployment) mode has no canary traffic split, so a new model is
brought up beside the served one first:

1. the version's files, checksum and smoke set (``smoke.json``, the model's offline answers on
   held-out vignettes) come from the registry;
2. a second InferenceService, ``<name>-candidate``, is applied from the same template with the
   new ``storageUri`` and must become Ready;
3. the smoke set goes through the candidate's v2 endpoint: every case must rank its disease in
   the top 3 and give the offline answers (same top 3, probabilities within ``TOLERANCE``);
4. only then the served InferenceService is switched to the new ``storageUri`` (server-side
   apply with its own field manager, so ``kubectl apply -k manifests/`` never touches it),
   waits for its new generation to be Ready and answers the smoke set too;
5. the registry records it: alias ``production`` on the version, ``previous`` on the one it
   replaced, tags ``deployed_at`` and ``deployed_to``.

The UI's description, precaution and severity tables, logged with the version's run, go into
the ConfigMap the UI mounts (``symptom-dx-knowledge``) before the switch.

On any failure the served InferenceService keeps (or gets back) the model it had, the aliases
stay, the candidate is deleted, and the error is one line. The template is the ConfigMap that
``manifests/`` generates from ``manifests/serving/inferenceservice.yaml``: edit that file, apply
the manifests, and the next deployment uses it. The smoke requests go to a predictor pod
through a port-forward, so the same code works from a pipeline pod and from an operator's
laptop, and no NetworkPolicy has to let anything else in.
"""

from __future__ import annotations

import copy
import http.client
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from symptom_dx import contract
from symptom_dx.deadlines import poll_until
from symptom_dx.errors import SymptomDxError, first_line
from symptom_dx.knowledge import KNOWLEDGE_FILES
from symptom_dx.settings import DeploySettings, MlflowSettings
from symptom_dx.tracking import (
    CHAMPION,
    KNOWLEDGE_ARTIFACT,
    SMOKE_ARTIFACT,
    check_tracking_server,
    configure_client,
)

PRODUCTION = "production"
PREVIOUS = "previous"
FIELD_MANAGER = "symptom-dx-deploy"
TEMPLATE_KEY = "inferenceservice.yaml"
# float32 on the wire against float64 offline
TOLERANCE = 1e-4
ISVC = {"api_version": "serving.kserve.io/v1beta1", "kind": "InferenceService"}


class _Replay:
    """What http.client needs of a socket, over bytes already received."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, *args: object, **kwargs: object) -> io.BytesIO:
        return io.BytesIO(self.data)


class DeployError(SymptomDxError):
    """A deployment was refused or failed; the served model is the one it was before."""


@dataclass(frozen=True)
class Release:
    """A registry version as the cluster serves it."""

    version: str
    storage_uri: str
    model_sha256: str
    run_id: str


@dataclass(frozen=True)
class Outcome:
    release: Release
    replaced: str | None  # the storageUri served before, if any
    changed: bool
    checked: int  # smoke cases answered


# -- registry --------------------------------------------------------------------------------
class Registry:
    """The MLflow side: which version, its files, its smoke set, and the aliases."""

    def __init__(self, settings: MlflowSettings) -> None:
        check_tracking_server(settings)
        configure_client(settings)
        from mlflow import MlflowClient

        self.client = MlflowClient()
        self.name = settings.registered_model

    def release(self, version: str | None = None, alias: str = CHAMPION) -> Release:
        from mlflow.exceptions import MlflowException

        try:
            if version:
                mv = self.client.get_model_version(self.name, version)
            else:
                mv = self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as e:
            which = f"version {version}" if version else f"alias '{alias}'"
            raise DeployError(f"no {which} of '{self.name}': {first_line(e)}") from None
        uri, digest = mv.tags.get("storage_uri", ""), mv.tags.get("model_sha256", "")
        if not uri or not digest:
            raise DeployError(
                f"version {mv.version} of '{self.name}' has no storage_uri/model_sha256 tags:"
                " it was not registered by this project's register step"
            )
        return Release(mv.version, uri, digest, mv.run_id)

    def smoke(self, release: Release) -> list[dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        try:
            path = self.client.download_artifacts(release.run_id, SMOKE_ARTIFACT)
            with open(path) as f:
                cases = json.load(f)
        except (MlflowException, OSError, ValueError) as e:
            raise DeployError(
                f"version {release.version} has no readable {SMOKE_ARTIFACT}: {first_line(e)}"
            ) from None
        if not cases:
            raise DeployError(f"version {release.version} has an empty smoke set")
        return cases

    def knowledge(self, release: Release) -> dict[str, str]:
        """The UI's knowledge tables logged with the version's run (file name -> text)."""
        from mlflow.exceptions import MlflowException

        try:
            folder = self.client.download_artifacts(release.run_id, KNOWLEDGE_ARTIFACT)
            tables = {n: (Path(folder) / n).read_text(encoding="utf-8") for n in KNOWLEDGE_FILES}
        except (MlflowException, OSError, UnicodeDecodeError) as e:
            raise DeployError(
                f"version {release.version} has no readable {KNOWLEDGE_ARTIFACT}/ tables:"
                f" {first_line(e)}"
            ) from None
        return tables

    def version_at(self, storage_uri: str) -> str | None:
        for mv in self.client.search_model_versions(f"name='{self.name}'"):
            if mv.tags.get("storage_uri") == storage_uri:
                return mv.version
        return None

    def aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(self.name).aliases)
        except MlflowException:
            return {}

    def record(self, release: Release, replaced_version: str | None, target: str) -> None:
        """Aliases and tags, written only after the served InferenceService answered."""
        c = self.client
        if replaced_version and replaced_version != release.version:
            c.set_registered_model_alias(self.name, PREVIOUS, replaced_version)
        c.set_registered_model_alias(self.name, PRODUCTION, release.version)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        c.set_model_version_tag(self.name, release.version, "deployed_to", target)
        c.set_model_version_tag(self.name, release.version, "deployed_at", now)


# -- cluster ---------------------------------------------------------------------------------
class Cluster:
    """The Kubernetes side: InferenceServices by server-side apply, readiness, the proxy."""

    def __init__(self, settings: DeploySettings) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.dynamic import DynamicClient

        try:
            if os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config()
            else:
                config.load_kube_config()
        except (ConfigException, OSError) as e:
            raise DeployError(f"no Kubernetes credentials: {first_line(e)}") from None
        self.settings = settings
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        resources = DynamicClient(self.api).resources
        self.isvcs = resources.get(**ISVC)
        self.config_maps = resources.get(api_version="v1", kind="ConfigMap")

    def template(self) -> dict[str, Any]:
        name, ns = self.settings.template_config_map, self.settings.namespace
        read = self.core.read_namespaced_config_map
        cm = self._call(f"read ConfigMap {ns}/{name}", read, name, ns)
        try:
            return yaml.safe_load(cm.data[TEMPLATE_KEY])
        except (KeyError, TypeError, yaml.YAMLError) as e:
            raise DeployError(f"ConfigMap {ns}/{name} has no valid {TEMPLATE_KEY}: {e}") from None

    def get(self, name: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self.isvcs.get(name=name, namespace=self.settings.namespace).to_dict()
        except NotFoundError:
            return None

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of an InferenceService, as our field manager."""
        return self._apply(self.isvcs, body)

    def apply_config_map(self, name: str, data: dict[str, str]) -> None:
        meta = {"name": name, "labels": {"app.kubernetes.io/part-of": "symptom-dx"}}
        self._apply(
            self.config_maps,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data},
        )

    def _apply(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        name, namespace = body["metadata"]["name"], self.settings.namespace
        body["metadata"]["namespace"] = namespace
        applied = self._call(
            f"apply {body['kind']} {namespace}/{name}",
            resource.server_side_apply,
            body=body,
            name=name,
            namespace=namespace,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return applied.to_dict()

    def delete(self, name: str) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self.isvcs.delete(name=name, namespace=self.settings.namespace)
        except NotFoundError:
            return
        self._wait(lambda: self.get(name) is None, f"{name} to be deleted")

    def wait_ready(self, name: str, generation: int) -> None:
        """Until the InferenceService has reconciled ``generation`` and is Ready, and its
        predictor Deployment has rolled out (no pod of an older spec left)."""
        last = {"message": "no status yet"}

        def ready() -> bool:
            isvc = self.get(name) or {}
            status = isvc.get("status", {})
            conditions = {c["type"]: c for c in status.get("conditions", [])}
            last["message"] = conditions.get("Ready", {}).get("message") or str(
                {t: c.get("status") for t, c in conditions.items()}
            )
            return (
                status.get("observedGeneration", 0) >= generation
                and conditions.get("Ready", {}).get("status") == "True"
                and self._rolled_out(f"{name}-predictor")
            )

        self._wait(ready, f"InferenceService {name} to be Ready", lambda: last["message"])

    def _rolled_out(self, deployment: str) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            d = client.AppsV1Api(self.api).read_namespaced_deployment_status(
                deployment, self.settings.namespace
            )
        except ApiException:
            return False
        want = d.spec.replicas or 0
        s = d.status
        return (
            (s.observed_generation or 0) >= (d.metadata.generation or 0)
            and (s.updated_replicas or 0) == want
            and (s.available_replicas or 0) == want
            and (s.replicas or 0) == want
        )

    def infer(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A v2 infer request to a Ready predictor pod of the InferenceService, through a
        port-forward (RBAC: ``pods/portforward``): the way an operator reaches a pod, which no
        NetworkPolicy stands in, from a pipeline pod or a laptop alike. KServe names the model
        after the InferenceService (the runtime's ``--model_name={{.Name}}``)."""
        from kubernetes.stream import portforward

        pod, port = self._ready_pod(name)
        payload = json.dumps(body).encode()
        request = (
            f"POST /v2/models/{name}/infer HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + payload
        forward = self._call(
            f"port-forward to {pod}",
            portforward,
            self.core.connect_get_namespaced_pod_portforward,
            pod,
            self.settings.namespace,
            ports=str(port),
        )
        try:
            sock = forward.socket(port)
            sock.settimeout(30)
            sock.sendall(request)
            raw = b"".join(iter(lambda: sock.recv(1 << 16), b""))
        except OSError as e:
            raise DeployError(f"no answer from {pod}: {first_line(e)}") from None
        finally:
            forward.close()
        response = http.client.HTTPResponse(_Replay(raw))  # type: ignore[arg-type]
        try:
            response.begin()
            text = response.read()
        except (http.client.HTTPException, ValueError) as e:
            raise DeployError(f"{pod} answered no HTTP response: {first_line(e)}") from None
        if response.status != 200:
            raise DeployError(f"{pod} answered HTTP {response.status}: {text[:200]!r}")
        return json.loads(text)

    def _ready_pod(self, name: str) -> tuple[str, int]:
        """A Ready pod of the InferenceService's predictor and its HTTP port (the runtime's
        first)."""
        pods = self._call(
            f"list {name}'s pods",
            self.core.list_namespaced_pod,
            self.settings.namespace,
            label_selector=f"serving.kserve.io/inferenceservice={name},component=predictor",
        ).items
        for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp, reverse=True):
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if pod.metadata.deletion_timestamp is None and conditions.get("Ready") == "True":
                [container] = [c for c in pod.spec.containers if c.ports]
                return pod.metadata.name, container.ports[0].container_port
        raise DeployError(f"{name} has no Ready predictor pod")

    def _wait(
        self, done: Callable[[], bool], what: str, why: Callable[[], str] = lambda: ""
    ) -> None:
        if not poll_until(done, self.settings.timeout_s, interval=2):
            reason = why()
            raise DeployError(
                f"timed out after {self.settings.timeout_s:.0f} s waiting for {what}"
                + (f": {reason}" if reason else "")
            )

    @staticmethod
    def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            return fn(*args, **kwargs)
        except (ApiException, DynamicApiError) as e:
            raise DeployError(f"cannot {what}: {_api_reason(e)}") from None
        except OSError as e:  # connection refused, DNS, TLS
            raise DeployError(f"cannot {what}: {first_line(e)}") from None


# -- the procedure ---------------------------------------------------------------------------
def inference_service(template: dict[str, Any], name: str, release: Release) -> dict[str, Any]:
    """The template with our name, the release's storageUri and its checksum (which the
    server checks before it unpickles anything)."""
    body = copy.deepcopy(template)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    meta["name"] = name
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    meta.setdefault("annotations", {})["symptom-dx/model-version"] = release.version
    model = body["spec"]["predictor"]["model"]
    model["storageUri"] = release.storage_uri
    model["args"] = [
        *[a for a in model.get("args", []) if not a.startswith("--model_sha256")],
        f"--model_sha256={release.model_sha256}",
    ]
    return body


def check_live(cluster: Cluster, name: str, cases: list[dict[str, Any]]) -> int:
    """The smoke set through ``name``: each disease in the live top 3, and the live answers
    equal to the offline ones. Returns the number of cases."""
    body = contract.infer_request([c["symptoms"] for c in cases], top_k=3)
    answer = cluster.infer(name, body)
    outputs = {o["name"]: o["data"] for o in answer.get("outputs", [])}
    if {contract.DISEASE.name, contract.PROBABILITY.name} - set(outputs):
        raise DeployError(f"{name} answered without disease/probability outputs: {answer!r:.200}")
    diseases, probabilities = outputs[contract.DISEASE.name], outputs[contract.PROBABILITY.name]
    for i, case in enumerate(cases):
        top3 = [str(d) for d in diseases[3 * i : 3 * i + 3]]
        live = probabilities[3 * i : 3 * i + 3]
        if case["disease"] not in top3:
            raise DeployError(
                f"{name} does not rank {case['disease']} in its top 3 for smoke case {i + 1}"
                f" (answered {', '.join(top3)})"
            )
        if top3 != case["top3"] or any(
            abs(a - b) > TOLERANCE for a, b in zip(live, case["probabilities"], strict=True)
        ):
            raise DeployError(
                f"{name} disagrees with the offline evaluation on smoke case {i + 1}:"
                f" live {top3} {[round(p, 4) for p in live]},"
                f" offline {case['top3']} {[round(p, 4) for p in case['probabilities']]}"
            )
    return len(cases)


def deploy(
    settings: DeploySettings,
    mlflow_settings: MlflowSettings,
    version: str | None = None,
    alias: str = CHAMPION,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Serve ``version`` (default: the version under ``alias``), verified as the module says."""
    registry = Registry(mlflow_settings)
    release = registry.release(version, alias)
    cases = registry.smoke(release)
    knowledge = registry.knowledge(release)
    cluster = Cluster(settings)
    template = cluster.template()
    name, candidate = settings.inference_service, f"{settings.inference_service}-candidate"
    served = cluster.get(name)
    before = served and served["spec"]["predictor"]["model"].get("storageUri")
    replaced_version = registry.version_at(before) if before else None
    if before == release.storage_uri:
        say(f"{name} already serves version {release.version}; checking it")
        checked = check_live(cluster, name, cases)
        registry.record(release, registry.aliases().get(PREVIOUS), _target(settings))
        return Outcome(release, before, False, checked)
    switched = False
    try:
        say(f"candidate {candidate}: version {release.version} from {release.storage_uri}")
        applied = cluster.apply(inference_service(template, candidate, release))
        cluster.wait_ready(candidate, applied["metadata"]["generation"])
        checked = check_live(cluster, candidate, cases)
        say(f"candidate answered {checked} smoke cases like the offline evaluation")
        cluster.apply_config_map(settings.knowledge_config_map, knowledge)
        applied = cluster.apply(inference_service(template, name, release))
        switched = True
        cluster.wait_ready(name, applied["metadata"]["generation"])
        check_live(cluster, name, cases)
        say(f"{name} serves version {release.version}")
    except DeployError as e:
        if switched and served:
            say(f"restoring {name} to {before}")
            _restore(cluster, served)
        raise DeployError(f"version {release.version} not deployed: {e}") from None
    finally:
        cluster.delete(candidate)
    registry.record(release, replaced_version, _target(settings))
    return Outcome(release, before, True, checked)


def rollback(
    settings: DeploySettings, mlflow_settings: MlflowSettings, say: Callable[[str], None] = print
) -> Outcome:
    """Deploy the version under the ``previous`` alias, through the same checks."""
    if PREVIOUS not in Registry(mlflow_settings).aliases():
        raise DeployError("nothing to roll back to: no version has the alias 'previous'")
    return deploy(settings, mlflow_settings, alias=PREVIOUS, say=say)


def status(settings: DeploySettings, mlflow_settings: MlflowSettings) -> dict[str, Any]:
    """What is served, which registry version that is, and the aliases."""
    registry = Registry(mlflow_settings)
    cluster = Cluster(settings)
    out: dict[str, Any] = {"inference_service": _target(settings), "aliases": registry.aliases()}
    served = cluster.get(settings.inference_service)
    if served is None:
        return {**out, "serving": None}
    uri = served["spec"]["predictor"]["model"].get("storageUri")
    conditions = {c["type"]: c["status"] for c in served.get("status", {}).get("conditions", [])}
    return {
        **out,
        "serving": {"storage_uri": uri, "version": registry.version_at(uri) if uri else None},
        "ready": conditions.get("Ready") == "True",
        "candidate_left": cluster.get(f"{settings.inference_service}-candidate") is not None,
    }


def _restore(cluster: Cluster, served: dict[str, Any]) -> None:
    body = {
        "apiVersion": served["apiVersion"],
        "kind": served["kind"],
        "metadata": {k: served["metadata"][k] for k in ("name", "namespace")},
        "spec": {"predictor": {"model": served["spec"]["predictor"]["model"]}},
    }
    annotations = served["metadata"].get("annotations", {})
    body["metadata"]["annotations"] = {
        k: v for k, v in annotations.items() if k.startswith("symptom-dx/")
    }
    try:
        applied = cluster.apply(body)
        cluster.wait_ready(served["metadata"]["name"], applied["metadata"]["generation"])
    except DeployError:
        pass  # the original failure is what gets reported; status shows what is served


def _target(settings: DeploySettings) -> str:
    return f"{settings.namespace}/{settings.inference_service}"


def _api_reason(e: Exception) -> str:
    body = getattr(e, "body", None) or getattr(e, "summary", lambda: "")()
    try:
        return json.loads(body).get("message", str(body))
    except (TypeError, ValueError):
        return f"{getattr(e, 'status', '')} {getattr(e, 'reason', '')}".strip() or first_line(e)
