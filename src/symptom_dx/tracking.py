"""MLflow: one run per training, the model version in the registry, the champion gate.

A new version gets the alias ``champion`` only if it beats the current champion on the gate
metric, both scored on the same held-out vignettes. The verdict is recorded as version tags
(``validation_status`` = passed/failed, ``gate_verdict`` = the sentence), so the registry
tells why a version was or was not promoted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import httpx

from symptom_dx.errors import SymptomDxError
from symptom_dx.settings import MlflowSettings
from symptom_dx.storage import split_s3_uri

CHAMPION = "champion"
# A registered version's run holds, besides metrics: the smoke set (held-out vignettes and the
# model's offline answers) and the UI's knowledge tables, which a deployment uses.
SMOKE_ARTIFACT = "smoke.json"
KNOWLEDGE_ARTIFACT = "knowledge"
# Scores are compared at this many decimals, recorded or re-scored alike: a gate metric is a
# share of ~1,200 vignettes, so finer differences are noise (and a score read back from a tag
# must equal the one it was written from).
GATE_DECIMALS = 6
# An unfinished registration older than this is an interrupted one, not a running one.
STALE_SECONDS = 15 * 60


class TrackingError(SymptomDxError):
    """MLflow could not be reached or refused an operation."""


@dataclass(frozen=True)
class GateVerdict:
    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_version: str | None = None
    champion_score: float | None = None


@dataclass(frozen=True)
class Registration:
    run_id: str
    version: str
    storage_uri: str
    verdict: GateVerdict

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": asdict(self.verdict)}


def configure_client(settings: MlflowSettings) -> None:
    """Point mlflow at the server and make an unreachable one fail in seconds, not minutes."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    # Artifacts through the server itself, never by presigned URLs to the bucket: an operator
    # reaches MLflow through a port-forward, from where the bucket's in-cluster address
    # (MinIO's Service) does not resolve. Our artifacts are small.
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(settings.timeout_s, 1) * 6)))
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)


def check_tracking_server(settings: MlflowSettings) -> None:
    """One readable line if the tracking server does not answer its health check."""
    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return  # a local file or database store needs no server
    try:
        r = httpx.get(f"{uri.rstrip('/')}/health", timeout=settings.timeout_s)
    except httpx.HTTPError as e:
        raise TrackingError(f"MLflow at {uri} is unreachable ({type(e).__name__})") from None
    if r.status_code != 200:
        raise TrackingError(f"MLflow at {uri} answered HTTP {r.status_code} to /health")


def lower_is_better(metric: str) -> bool:
    """Losses and calibration errors improve downwards; accuracies and F1 upwards."""
    return metric.endswith(("log_loss", "ece"))


def decide(
    metric: str,
    challenger: float,
    champion_version: str | None,
    champion: float | None,
    min_improvement: float,
    note: str = "",
) -> GateVerdict:
    """Promote when there is no champion or the challenger beats it by ``min_improvement``."""
    note = f" ({note})" if note else ""
    challenger = round(challenger, GATE_DECIMALS)
    if champion_version is None or champion is None:
        reason = f"no champion yet; {metric} = {challenger:.4f}{note}"
        return GateVerdict(True, reason, metric, challenger)
    champion = round(champion, GATE_DECIMALS)
    if lower_is_better(metric):
        bar, wins, need = champion - min_improvement, challenger < champion - min_improvement, "<"
    else:
        bar, wins, need = champion + min_improvement, challenger > champion + min_improvement, ">"
    verb = "beats" if wins else "does not beat"
    digits = 4  # more only where four would print two different scores alike
    while (
        digits < GATE_DECIMALS
        and challenger != champion
        and (f"{challenger:.{digits}f}" == f"{champion:.{digits}f}")
    ):
        digits += 1
    reason = (
        f"{metric} {challenger:.{digits}f} {verb} champion v{champion_version}"
        f" {champion:.{digits}f} (needed {need} {bar:.{digits}f})"
        f"{'' if wins else '; champion stays'}{note}"
    )
    return GateVerdict(wins, reason, metric, challenger, champion_version, champion)


def score_tag(score: float) -> str:
    """How a gate score is written into a version tag (read back by ``recorded_score``)."""
    return f"{score:.{GATE_DECIMALS}f}"


def recorded_score(tag: str | None) -> float | None:
    try:
        return float(tag) if tag else None
    except ValueError:
        return None


def reconcile(client: Any, name: str, experiment: str, store: Any) -> list[str]:
    """Clean up what interrupted registrations left, and say what (one line each).

    A version with no gate verdict (``validation_status``) and no alias, older than
    ``STALE_SECONDS``, is deleted with its stored folder; a run of the experiment still
    RUNNING after that long is marked FAILED.
    """
    import time

    from mlflow.exceptions import MlflowException

    cutoff_ms = (time.time() - STALE_SECONDS) * 1000
    done = []
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        versions = []
    for v in versions:
        if "validation_status" in v.tags or v.aliases or v.creation_timestamp > cutoff_ms:
            continue
        if uri := v.tags.get("storage_uri"):
            bucket, prefix = split_s3_uri(uri)
            if bucket == store.bucket and prefix:
                store.delete_prefix(prefix + "/")
        client.delete_model_version(name, v.version)
        done.append(f"removed version {v.version} of {name}: its registration never finished")
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        for run in client.search_runs(
            [found.experiment_id], filter_string="attributes.status = 'RUNNING'"
        ):
            if run.info.start_time < cutoff_ms:
                client.set_terminated(run.info.run_id, "FAILED")
                done.append(f"marked run {run.info.run_id} FAILED: it was interrupted")
    return done


def flatten_metrics(metrics: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    """{"k3": {"top1": .9}} -> {"k3_top1": .9}."""
    return {
        f"{prefix}{group}_{name}": float(value)
        for group, values in metrics.items()
        for name, value in values.items()
    }


class Champion(NamedTuple):
    """The registered model's champion: what serving it needs."""

    version: str
    storage_uri: str
    model_sha256: str  # of model.joblib, which the server checks before unpickling it


def champion(settings: MlflowSettings) -> Champion:
    """The registered model's champion; one line if there is none or it lacks its tags."""
    check_tracking_server(settings)
    configure_client(settings)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = settings.registered_model
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as e:
        raise TrackingError(
            f"no champion for model '{name}' in {settings.tracking_uri}: {str(e).splitlines()[0]}"
        ) from None
    uri, digest = version.tags.get("storage_uri"), version.tags.get("model_sha256")
    if not uri or not digest:
        raise TrackingError(
            f"champion v{version.version} of '{name}' has no storage_uri/model_sha256 tags"
        )
    return Champion(version.version, uri, digest)
