"""The pipeline's steps as plain functions over files; the KFP components are thin wrappers.

Each step validates its inputs before it writes anything, and a step that fails leaves no
partial output behind: files are written to a temporary name and moved into place, S3 uploads
are rolled back, and a registry version whose storage failed is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from symptom_dx import kaggle
from symptom_dx.candidates import ALGORITHMS, CANDIDATES, DEFAULT_CANDIDATE, HYPERPARAMETERS
from symptom_dx.config import DEFAULTS
from symptom_dx.dataset import Dataset, dataset_statistics, load_dataset, write_dataset
from symptom_dx.errors import SymptomDxError, first_line
from symptom_dx.evaluation import confusion, evaluate, pattern_split, smoke_set
from symptom_dx.knowledge import KNOWLEDGE_FILES, load_knowledge
from symptom_dx.mlflow_model import predict_labels
from symptom_dx.model import SymptomClassifier, runtime_versions
from symptom_dx.process_exit import skip_final_collection
from symptom_dx.settings import S3_SECRET_KEYS, MlflowSettings, S3Settings
from symptom_dx.sources import fetch, sha256_of
from symptom_dx.storage import ObjectStore
from symptom_dx.tracking import (
    CHAMPION,
    KNOWLEDGE_ARTIFACT,
    SMOKE_ARTIFACT,
    Registration,
    TrackingError,
    check_tracking_server,
    configure_client,
    decide,
    flatten_metrics,
    lower_is_better,
    reconcile,
    recorded_score,
    score_tag,
)
from symptom_dx.vocabulary import vocabulary

T = TypeVar("T")
MODEL_FILE = "model.joblib"


ERROR_FILE_ENV = "SYMPTOM_DX_ERROR_FILE"


def run_step(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a step; a known failure ends the process with one line on stderr and exit code 1.

    When ``SYMPTOM_DX_ERROR_FILE`` is set (by the local runner), the line is also written
    there, so the runner can repeat it after the pipeline's own logs.
    """
    skip_final_collection()  # the step's process ends with it
    for key in S3_SECRET_KEYS:  # present but empty with Pod Identity: unset
        if os.environ.get(key) == "":
            del os.environ[key]
    try:
        return fn(*args, **kwargs)
    except SymptomDxError as e:
        line = f"{name}: {e}"
        print(line, file=sys.stderr, flush=True)
        if path := os.environ.get(ERROR_FILE_ENV):
            Path(path).write_text(line + "\n")
        raise SystemExit(1) from None


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


# -- ingest ---------------------------------------------------------------------------------
def ingest(
    source: str,
    dataset_path: Path,
    statistics_path: Path,
    sha256: str = "",
    store: ObjectStore | None = None,
    knowledge_source: str = "",
    knowledge_dir: Path | None = None,
) -> dict[str, Any]:
    """Fetch, check and validate the data; write it in canonical form with its statistics.

    The written CSV has the canonical symptom ids in feature order and canonical disease
    names, so every later step reads a dataset that already obeys the contract. With a
    ``store``, the validated file is also kept in the bucket under its content hash.

    With a ``knowledge_dir``, the description, precaution and severity tables the UI shows
    (which travel with the model) are fetched from ``knowledge_source`` (the folder or prefix
    holding the three files; default: the folder of ``source``) and validated too; when
    ``sha256`` is given, each must also match its pinned sha256 (``symptom_dx.kaggle``).
    Nothing is written unless every file passes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "knowledge"
        if knowledge_dir is not None:
            folder = source.rsplit("/", 1)[0] if "/" in source else "."
            base = (knowledge_source or folder).rstrip("/")
            for name in KNOWLEDGE_FILES:
                pin = kaggle.sha256_pin(name) if sha256 else ""
                fetch(f"{base}/{name}", staged / name, sha256=pin)
            load_knowledge(staged)  # every disease and symptom must map to canonical names
        raw = fetch(source, Path(tmp) / "raw.csv", sha256=sha256)
        ds = load_dataset(raw, name=source)
        raw_sha = sha256_of(raw)
        stats = {**dataset_statistics(ds), "source": source, "source_sha256": raw_sha}
        canonical = write_dataset(ds, Path(tmp) / "dataset.csv")
        if store is not None:
            store.check()
            stats["stored_uri"] = store.upload_file(canonical, f"datasets/{raw_sha}/dataset.csv")
        dataset_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(canonical, dataset_path)
        if knowledge_dir is not None:
            stats["knowledge_sha256"] = {n: sha256_of(staged / n) for n in KNOWLEDGE_FILES}
            _parent(knowledge_dir)
            _replace_dir(staged, knowledge_dir)
    _write_json(statistics_path, stats)
    return stats


# -- split ----------------------------------------------------------------------------------
def split(
    dataset_path: Path,
    train_path: Path,
    test_path: Path,
    test_fraction: float,
    split_seed: int,
) -> dict[str, Any]:
    """Split the distinct patterns per disease into a training and a held-out set (files in
    the dataset's canonical form); what every later step reads instead of splitting again.

    Returns the split's description (sizes, parameters), which the models record.
    """
    check_parameters(test_fraction=(test_fraction, (0.0,), 0.9))
    parts = pattern_split(load_dataset(dataset_path), test_fraction, split_seed)
    write_dataset(parts.train, train_path)
    write_dataset(parts.test, test_path)
    return {
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "train_patterns": len(parts.train),
        "test_patterns": len(parts.test),
    }


# -- train ----------------------------------------------------------------------------------
def parse_algorithms(algorithms: str) -> list[str]:
    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    unknown = [a for a in names if a not in ALGORITHMS]
    if unknown or not names:
        raise SymptomDxError(
            f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}:"
            f" choose from {', '.join(ALGORITHMS)}"
        )
    return names


def check_parameters(**bounds: tuple[float, float, float]) -> None:
    """name=(value, low, high) with low <= value <= high, else one line naming the parameter.

    Use ``math.inf`` for an open upper bound; a ``low`` given as ``(x,)`` is exclusive.
    """
    problems = []
    for name, (value, low, high) in bounds.items():
        exclusive = isinstance(low, tuple)
        lo = low[0] if exclusive else low
        if not (lo < value if exclusive else lo <= value) or value > high:
            side = f"> {lo}" if exclusive else f">= {lo}"
            upper = "" if high == float("inf") else f" and <= {high}"
            problems.append(f"{name} = {value} must be {side}{upper}")
    if problems:
        raise SymptomDxError("bad pipeline parameter(s): " + "; ".join(problems))


def hyperparameters(**values: float) -> dict[str, dict[str, float]]:
    """The pipeline's hyperparameters by name (``nb_alpha``, ...: each of the candidate table's,
    ``symptom_dx.candidates``), checked against their ranges, as each candidate's estimator
    keywords: ``{"naive_bayes": {"alpha": nb_alpha}, ...}``."""
    problems = [f"{name} not given" for name in HYPERPARAMETERS if name not in values]
    problems += [
        f"{name} is no candidate's hyperparameter" for name in values if name not in HYPERPARAMETERS
    ]
    if problems:
        raise SymptomDxError("bad pipeline parameter(s): " + "; ".join(problems))
    check_parameters(
        **{
            name: (values[name], (h.minimum,) if h.exclusive_minimum else h.minimum, h.maximum)
            for name, h in HYPERPARAMETERS.items()
        }
    )
    return {
        c.name: {h.keyword: values[h.name] for h in c.hyperparameters} for c in CANDIDATES.values()
    }


def train(
    train_path: Path,
    candidates_dir: Path,
    algorithms: str,
    params: dict[str, dict],
    dropout_samples: int,
    seed: int,
    split_info: dict[str, Any] | None = None,
) -> list[str]:
    """Train every candidate on the training patterns; each model records how (``training``)."""
    names = parse_algorithms(algorithms)
    check_parameters(dropout_samples=(dropout_samples, 0, 10_000))
    patterns = load_dataset(train_path)
    train_sha256 = sha256_of(train_path)
    tmp = Path(tempfile.mkdtemp(prefix=".candidates-", dir=_parent(candidates_dir)))
    try:
        for name in names:
            model = SymptomClassifier.train(
                patterns.X, patterns.y, name, params.get(name, {}), dropout_samples, seed
            )
            model.metadata["training"] = {
                "dropout_samples": dropout_samples,
                "seed": seed,
                "train_patterns": len(patterns),
                # the gate re-scores a champion only on patterns it was not trained on
                "train_sha256": train_sha256,
                "split": split_info or {},
            }
            model.save(tmp / name)
        _replace_dir(tmp, candidates_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


def train_default_candidate(ds: Dataset) -> tuple[SymptomClassifier, Any]:
    """Naive Bayes with the pipeline's defaults, on the training side of the default split."""
    parts = pattern_split(ds, DEFAULTS.test_fraction, DEFAULTS.split_seed)
    model = SymptomClassifier.train(
        parts.train.X,
        parts.train.y,
        DEFAULT_CANDIDATE,
        hyperparameters(**DEFAULTS.hyperparameter_values())[DEFAULT_CANDIDATE],
        DEFAULTS.dropout_samples,
        DEFAULTS.seed,
    )
    return model, parts


# -- evaluate -------------------------------------------------------------------------------
def evaluate_candidates(
    test_path: Path,
    candidates_dir: Path,
    best_model_dir: Path,
    gate_metric: str = DEFAULTS.gate_metric,
    vignettes_per_pattern: int = DEFAULTS.vignettes_per_pattern,
    seed: int = DEFAULTS.seed,
) -> dict[str, Any]:
    """Score every candidate on the held-out patterns; copy the best (by ``gate_metric``) out.

    The result says how it scored (``plan``), so the gate can score a champion the same way.
    """
    check_parameters(vignettes_per_pattern=(vignettes_per_pattern, 1, 10_000))
    test = load_dataset(test_path)
    plan = {"vignettes_per_pattern": vignettes_per_pattern, "seed": seed}
    scores: dict[str, dict[str, float]] = {}
    models: dict[str, SymptomClassifier] = {}
    for model_dir in sorted(p for p in candidates_dir.iterdir() if p.is_dir()):
        models[model_dir.name] = SymptomClassifier.load(model_dir)
        scores[model_dir.name] = score_model(models[model_dir.name], test, plan)
    if not scores:
        raise SymptomDxError(f"no trained candidates in {candidates_dir}")
    if gate_metric not in next(iter(scores.values())):
        known = ", ".join(sorted(next(iter(scores.values()))))
        raise SymptomDxError(f"unknown gate metric '{gate_metric}': choose from {known}")
    downwards = lower_is_better(gate_metric)
    best = sorted(scores, key=lambda n: scores[n][gate_metric], reverse=not downwards)[0]
    model = models[best]
    model.metadata["metrics"] = scores[best]
    model.metadata["evaluation"] = {
        "held_out_patterns": len(test),
        "gate_metric": gate_metric,
        **plan,
    }
    model.save(best_model_dir)
    matrix = confusion(model, test, k=3, per_pattern=vignettes_per_pattern, seed=seed)
    return {
        "best": best,
        "gate_metric": gate_metric,
        "candidates": scores,
        "metrics": scores[best],
        "confusion_k3": {"labels": model.classes, "matrix": matrix.tolist()},
        "held_out_patterns": len(test),
        "plan": plan,
        "training": model.metadata.get("training", {}),
    }


def score_model(model: SymptomClassifier, test: Dataset, plan: dict[str, int]) -> dict[str, float]:
    """Every metric of ``model`` on the held-out patterns, the way ``plan`` says: the one
    function that scores candidates in evaluate and the champion in the gate."""
    results = evaluate(model, test, plan["vignettes_per_pattern"], seed=plan["seed"])
    return flatten_metrics(results)


# -- register -------------------------------------------------------------------------------
def register(
    model_dir: Path,
    test_path: Path,
    evaluation: dict[str, Any],
    s3: S3Settings,
    mlflow_settings: MlflowSettings,
    min_improvement: float = DEFAULTS.min_improvement,
    knowledge_dir: Path | None = None,
) -> Registration:
    """Log the run, store the model once, register it, gate it against the champion, and move
    the alias last. Anything that fails on the way is rolled back (version, files, run)."""
    store = ObjectStore(s3)
    store.check()
    check_tracking_server(mlflow_settings)
    configure_client(mlflow_settings)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    client = MlflowClient()
    name = mlflow_settings.registered_model
    for line in reconcile(client, name, mlflow_settings.experiment, store):
        print(f"register: {line}", file=sys.stderr, flush=True)
    model = SymptomClassifier.load(model_dir)
    test = load_dataset(test_path)
    written = _Written()
    try:
        smoke = smoke_set(model, test, seed=evaluation["plan"]["seed"])
        written.run_id = log_run(
            model, evaluation, smoke, min_improvement, mlflow_settings, knowledge_dir
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = mlflow_model_folder(model_dir, model, Path(tmp) / "model")
            digest = sha256_of(folder / MODEL_FILE)
            written.prefix = f"models/{name}/{written.run_id}"
            storage_uri = store.upload_dir(folder, written.prefix)
        written.version = register_version(client, name, written.run_id, storage_uri, digest)
        verdict = gate(client, name, store, test, evaluation, min_improvement)
        record_verdict(client, name, written.version, written.run_id, verdict)
        # Last, once everything else is written: a failure before this point never touches
        # the champion.
        if verdict.promoted:
            client.set_registered_model_alias(name, CHAMPION, written.version)
    except (MlflowException, RequestException) as e:
        written.rollback(client, store, name)
        raise TrackingError(f"MLflow registration failed: {first_line(e)}") from None
    except SymptomDxError:
        written.rollback(client, store, name)
        raise
    except Exception as e:  # anything else still must not leave a half-registered version
        written.rollback(client, store, name)
        raise TrackingError(f"registration failed: {type(e).__name__}: {first_line(e)}") from None
    return Registration(written.run_id, str(written.version), storage_uri, verdict)


def log_run(
    model: SymptomClassifier,
    evaluation: dict[str, Any],
    smoke: list[dict[str, Any]],
    min_improvement: float,
    mlflow_settings: MlflowSettings,
    knowledge_dir: Path | None = None,
) -> str:
    """One MLflow run: parameters, every candidate's metrics, the evaluation, the smoke set
    (``smoke.json``: held-out vignettes and the model's offline answers, which a deployment
    must reproduce live) and the UI's knowledge tables (``knowledge/``, which the deployment
    puts beside the served model). Returns the run id; the run is closed."""
    import mlflow

    params = {
        "algorithm": model.algorithm,
        **model.params,
        **{k: v for k, v in evaluation["training"].items() if k != "split"},
        **{f"split.{k}": v for k, v in evaluation["training"].get("split", {}).items()},
        **{f"evaluation.{k}": v for k, v in evaluation["plan"].items()},
        "gate_metric": evaluation["gate_metric"],
        "min_improvement": min_improvement,
        "candidates": ",".join(evaluation["candidates"]),
    }
    mlflow.set_experiment(mlflow_settings.experiment)
    with mlflow.start_run(run_name=f"train-{evaluation['best']}") as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(evaluation["metrics"])
        for candidate, scores in evaluation["candidates"].items():
            mlflow.log_metrics({f"{candidate}.{k}": v for k, v in scores.items()})
        mlflow.log_dict(evaluation, "evaluation.json")
        mlflow.log_dict(smoke, SMOKE_ARTIFACT)
        if knowledge_dir is not None:
            mlflow.log_artifacts(str(knowledge_dir), KNOWLEDGE_ARTIFACT)
        return run.info.run_id


def mlflow_model_folder(model_dir: Path, model: SymptomClassifier, dest: Path) -> Path:
    """The one stored copy: KServe's layout (``model.joblib``, ``metadata.json``) that is also
    an MLflow model (``MLmodel`` with signature and input example; pyfunc loader
    ``symptom_dx.mlflow_model``), so the registry version and the InferenceService's storageUri
    name the same files."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    ids = list(vocabulary().ids)
    example = pd.DataFrame(np.zeros((1, len(ids)), dtype=np.int64), columns=ids)
    for sid in ("itching", "skin_rash", "nodal_skin_eruptions"):
        example[sid] = 1
    versions = runtime_versions()
    with warnings.catch_warnings():
        # 0/1 integers are the truth here (no missing values), so MLflow's hint does not apply.
        warnings.filterwarnings("ignore", message=".*integer column")
        signature = infer_signature(example, predict_labels(model, example))
        mlflow.pyfunc.save_model(
            path=str(dest),
            loader_module="symptom_dx.mlflow_model",
            signature=signature,
            input_example=example,
            pip_requirements=[
                f"scikit-learn=={versions['scikit-learn']}",
                f"numpy=={versions['numpy']}",
                f"joblib=={versions['joblib']}",
            ],
        )
    for path in model_dir.iterdir():
        shutil.copy2(path, dest / path.name)
    return dest


def register_version(
    client: Any, name: str, run_id: str, storage_uri: str, model_sha256: str
) -> str:
    """A new version of ``name`` whose source is the stored folder."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {"storage_uri": storage_uri, "model_sha256": model_sha256}
    return client.create_model_version(name, storage_uri, run_id=run_id, tags=tags).version


def gate(
    client: Any,
    name: str,
    store: ObjectStore,
    test: Dataset,
    evaluation: dict[str, Any],
    min_improvement: float,
) -> Any:
    """The verdict on the challenger against the champion, scored like with like."""
    metric = evaluation["gate_metric"]
    champion, score, note = champion_score(client, name, store, test, evaluation)
    return decide(metric, evaluation["metrics"][metric], champion, score, min_improvement, note)


def champion_score(
    client: Any, name: str, store: ObjectStore, test: Dataset, evaluation: dict[str, Any]
) -> tuple[str | None, float | None, str]:
    """(champion version, its gate metric, a note), scored as the challenger was.

    Re-scoring is fair only if the champion was trained without today's held-out patterns,
    i.e. on the same training patterns (same file): otherwise its recorded score is used. A
    champion whose files cannot be loaded (missing, altered, another vocabulary) counts as no
    champion, and the note says so.
    """
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None, ""
    metric = evaluation["gate_metric"]
    recorded = recorded_score(champion.tags.get(metric))
    if not (uri := champion.tags.get("storage_uri")):
        return (
            champion.version,
            recorded,
            "champion has no stored model; its recorded score is used",
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = store.download_dir(uri, Path(tmp) / "m")
            expected = champion.tags.get("model_sha256")
            if expected and sha256_of(folder / MODEL_FILE) != expected:
                raise SymptomDxError(f"{MODEL_FILE} does not match its recorded sha256")
            previous = SymptomClassifier.load(folder)
        except SymptomDxError as e:
            return (
                None,
                None,
                f"champion v{champion.version} cannot be loaded ({e}): treated as none",
            )
    ours = evaluation["training"].get("train_sha256")
    if not ours or previous.metadata.get("training", {}).get("train_sha256") != ours:
        note = "champion was trained on another split; its recorded score is used"
        return champion.version, recorded, note
    return champion.version, score_model(previous, test, evaluation["plan"])[metric], ""


def record_verdict(client: Any, name: str, version: str, run_id: str, verdict: Any) -> None:
    """The gate's verdict on the version (tags) and the run; the score at full precision."""
    tags = {
        verdict.metric: score_tag(verdict.challenger_score),
        "validation_status": "passed" if verdict.promoted else "failed",
        "gate_verdict": verdict.reason,
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_tag(run_id, "gate_verdict", verdict.reason)


@dataclass
class _Written:
    """What a registration has written so far, to undo it if a later part fails."""

    run_id: str | None = None
    version: str | None = None
    prefix: str = ""

    def rollback(self, client: Any, store: ObjectStore, name: str) -> None:
        """Best effort: the original failure is what gets reported."""
        if self.version is not None:
            with contextlib.suppress(Exception):
                client.delete_model_version(name, self.version)
        if self.prefix:
            with contextlib.suppress(SymptomDxError):
                store.delete_prefix(self.prefix + "/")
        if self.run_id is not None:
            # Marked failed and deleted: restorable with `mlflow runs restore`, and
            # `mlflow gc` purges its artifacts.
            with contextlib.suppress(Exception):
                client.set_terminated(self.run_id, "FAILED")
                client.delete_run(self.run_id)


# -- helpers --------------------------------------------------------------------------------
def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def _replace_dir(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.move(str(src), str(dest))
