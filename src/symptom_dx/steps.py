"""The pipeline's steps as plain functions over files; the KFP components are thin wrappers.

Each step validates its inputs before it writes anything, and a step that fails leaves no
partial output behind: files are written to a temporary name and moved into place, S3 uploads
are rolled back, and a registry version whose storage failed is deleted.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from symptom_dx.dataset import LABEL_COLUMN, Dataset, dataset_statistics, load_dataset
from symptom_dx.errors import SymptomDxError
from symptom_dx.evaluation import Split, confusion, evaluate, pattern_split
from symptom_dx.model import ALGORITHMS, SymptomClassifier, runtime_versions
from symptom_dx.settings import MlflowSettings, S3Settings
from symptom_dx.sources import fetch, sha256_of
from symptom_dx.storage import ObjectStore
from symptom_dx.tracking import (
    CHAMPION,
    Registration,
    TrackingError,
    check_tracking_server,
    configure_client,
    decide,
    flatten_metrics,
    lower_is_better,
)
from symptom_dx.vocabulary import vocabulary

T = TypeVar("T")
DEFAULT_GATE_METRIC = "k3_top1"
# The pipeline's defaults for the candidate that usually wins (a test checks the pipeline's
# signature against these); tests and the benchmark train their model with them.
DEFAULTS = {
    "nb_alpha": 0.1,
    "dropout_samples": 30,
    "test_fraction": 0.2,
    "split_seed": 0,
    "seed": 0,
}


ERROR_FILE_ENV = "SYMPTOM_DX_ERROR_FILE"


def run_step(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a step; a known failure ends the process with one line on stderr and exit code 1.

    When ``SYMPTOM_DX_ERROR_FILE`` is set (by the local runner), the line is also written
    there, so the runner can repeat it after the pipeline's own logs.
    """
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
) -> dict[str, Any]:
    """Fetch, check and validate the data; write it in canonical form with its statistics.

    The written CSV has the canonical symptom ids in feature order and canonical disease
    names, so every later step reads a dataset that already obeys the contract. With a
    ``store``, the validated file is also kept in the bucket under its content hash.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw = fetch(source, Path(tmp) / "raw.csv", sha256=sha256)
        ds = load_dataset(raw, name=source)
        raw_sha = sha256_of(raw)
    stats = {**dataset_statistics(ds), "source": source, "source_sha256": raw_sha}
    dataset_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_csv = dataset_path.with_name(f".{dataset_path.name}.tmp")
    try:
        with open(tmp_csv, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([*vocabulary().ids, LABEL_COLUMN])
            for row, label in zip(ds.X, ds.y, strict=True):
                w.writerow([*row.tolist(), label])
        if store is not None:
            store.check()
            stats["stored_uri"] = store.upload_file(tmp_csv, f"datasets/{raw_sha}/dataset.csv")
        tmp_csv.replace(dataset_path)
    finally:
        tmp_csv.unlink(missing_ok=True)
    _write_json(statistics_path, stats)
    return stats


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


def hyperparameters(nb_alpha: float, lr_c: float, rf_n_estimators: int) -> dict[str, dict]:
    inf = float("inf")
    check_parameters(
        nb_alpha=(nb_alpha, 0.0, inf),
        lr_c=(lr_c, (0.0,), inf),
        rf_n_estimators=(rf_n_estimators, 1, inf),
    )
    return {
        "naive_bayes": {"alpha": nb_alpha},
        "logistic_regression": {"C": lr_c},
        "random_forest": {"n_estimators": rf_n_estimators},
    }


def train(
    dataset_path: Path,
    candidates_dir: Path,
    algorithms: str,
    params: dict[str, dict],
    dropout_samples: int,
    test_fraction: float,
    split_seed: int,
    seed: int,
) -> list[str]:
    """Train every candidate on the training side of the pattern split."""
    names = parse_algorithms(algorithms)
    check_parameters(
        dropout_samples=(dropout_samples, 0, 10_000), test_fraction=(test_fraction, (0.0,), 0.9)
    )
    split = pattern_split(load_dataset(dataset_path), test_fraction, split_seed)
    tmp = Path(tempfile.mkdtemp(prefix=".candidates-", dir=_parent(candidates_dir)))
    try:
        for name in names:
            model = SymptomClassifier.train(
                split.train.X, split.train.y, name, params.get(name, {}), dropout_samples, seed
            )
            model.metadata["training"] = {
                "dropout_samples": dropout_samples,
                "test_fraction": test_fraction,
                "split_seed": split_seed,
                "seed": seed,
                "train_patterns": len(split.train),
            }
            model.save(tmp / name)
        _replace_dir(tmp, candidates_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


def train_default_candidate(ds: Dataset) -> tuple[SymptomClassifier, Split]:
    """Naive Bayes with the pipeline's defaults, on the training side of the default split."""
    split = pattern_split(ds, DEFAULTS["test_fraction"], DEFAULTS["split_seed"])
    model = SymptomClassifier.train(
        split.train.X,
        split.train.y,
        "naive_bayes",
        {"alpha": DEFAULTS["nb_alpha"]},
        DEFAULTS["dropout_samples"],
        DEFAULTS["seed"],
    )
    return model, split


# -- evaluate -------------------------------------------------------------------------------
def held_out(dataset_path: Path, test_fraction: float, split_seed: int) -> Dataset:
    return pattern_split(load_dataset(dataset_path), test_fraction, split_seed).test


def evaluate_candidates(
    dataset_path: Path,
    candidates_dir: Path,
    best_model_dir: Path,
    test_fraction: float,
    split_seed: int,
    gate_metric: str = DEFAULT_GATE_METRIC,
    vignettes_per_pattern: int = 20,
) -> dict[str, Any]:
    """Score every candidate on held-out patterns; copy the best (by ``gate_metric``) out."""
    check_parameters(
        test_fraction=(test_fraction, (0.0,), 0.9),
        vignettes_per_pattern=(vignettes_per_pattern, 1, 10_000),
    )
    test = held_out(dataset_path, test_fraction, split_seed)
    scores: dict[str, dict[str, float]] = {}
    nested: dict[str, dict[str, dict[str, float]]] = {}
    models: dict[str, SymptomClassifier] = {}
    for model_dir in sorted(p for p in candidates_dir.iterdir() if p.is_dir()):
        model = models[model_dir.name] = SymptomClassifier.load(model_dir)
        nested[model_dir.name] = evaluate(model, test, vignettes_per_pattern, seed=split_seed)
        scores[model_dir.name] = flatten_metrics(nested[model_dir.name])
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
        "vignettes_per_pattern": vignettes_per_pattern,
        "gate_metric": gate_metric,
    }
    model.save(best_model_dir)
    matrix = confusion(model, test, k=3, per_pattern=vignettes_per_pattern, seed=split_seed)
    return {
        "best": best,
        "gate_metric": gate_metric,
        "candidates": scores,
        "metrics": scores[best],
        "confusion_k3": {"labels": model.classes, "matrix": matrix.tolist()},
        "held_out_patterns": len(test),
        "split": {"test_fraction": test_fraction, "split_seed": split_seed},
    }


# -- register -------------------------------------------------------------------------------
def register(
    model_dir: Path,
    dataset_path: Path,
    evaluation: dict[str, Any],
    s3: S3Settings,
    mlflow_settings: MlflowSettings,
    min_improvement: float = 0.0,
    vignettes_per_pattern: int = 20,
) -> Registration:
    """Log the run, store the model in KServe's layout, register it, and apply the gate."""
    store = ObjectStore(s3)
    store.check()
    check_tracking_server(mlflow_settings)
    configure_client(mlflow_settings)
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    model = SymptomClassifier.load(model_dir)
    name = mlflow_settings.registered_model
    gate_metric = evaluation["gate_metric"]
    params = {
        "algorithm": model.algorithm,
        **model.params,
        **model.metadata.get("training", {}),
        "gate_metric": gate_metric,
        "min_improvement": min_improvement,
        "candidates": ",".join(evaluation["candidates"]),
    }
    client = MlflowClient()
    run_id = version = None
    storage_prefix = ""
    try:
        mlflow.set_experiment(mlflow_settings.experiment)
        with mlflow.start_run(run_name=f"train-{evaluation['best']}") as run:
            run_id = run.info.run_id
            mlflow.log_params({k: str(v) for k, v in params.items()})
            mlflow.log_metrics(evaluation["metrics"])
            for candidate, scores in evaluation["candidates"].items():
                mlflow.log_metrics({f"{candidate}.{k}": v for k, v in scores.items()})
            mlflow.log_dict(evaluation, "evaluation.json")
            _log_mlflow_model(model, model_dir)
            storage_prefix = f"models/{name}/{run_id}"
            storage_uri = store.upload_dir(model_dir, storage_prefix)
            mlflow.set_tag("storage_uri", storage_uri)
            try:
                client.create_registered_model(name)
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            mv = client.create_model_version(
                name, f"runs:/{run_id}/model", run_id=run_id, tags={"storage_uri": storage_uri}
            )
            version = mv.version
            champion_version, champion_score, note = _champion_score(
                client, name, store, dataset_path, evaluation, vignettes_per_pattern
            )
            verdict = decide(
                gate_metric,
                evaluation["metrics"][gate_metric],
                champion_version,
                champion_score,
                min_improvement,
                note,
            )
            tags = {
                gate_metric: f"{verdict.challenger_score:.6f}",
                "validation_status": "passed" if verdict.promoted else "failed",
                "gate_verdict": verdict.reason,
            }
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
            mlflow.set_tag("gate_verdict", verdict.reason)
        # Last, once everything else is written: a failure before this point never touches
        # the champion.
        if verdict.promoted:
            client.set_registered_model_alias(name, CHAMPION, version)
    except (MlflowException, RequestException) as e:
        _rollback(client, store, name, version, storage_prefix, run_id)
        raise TrackingError(f"MLflow registration failed: {_first_line(e)}") from None
    except SymptomDxError:
        _rollback(client, store, name, version, storage_prefix, run_id)
        raise
    except Exception as e:  # anything else still must not leave a half-registered version
        _rollback(client, store, name, version, storage_prefix, run_id)
        raise TrackingError(f"registration failed: {type(e).__name__}: {_first_line(e)}") from None
    return Registration(run_id, str(version), storage_uri, verdict)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _log_mlflow_model(model: SymptomClassifier, model_dir: Path) -> None:
    """The sklearn flavour with signature and input example, model.joblib beside it."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    ids = list(vocabulary().ids)
    example = pd.DataFrame(np.zeros((1, len(ids)), dtype=np.int64), columns=ids)
    for sid in ("itching", "skin_rash", "nodal_skin_eruptions"):
        example[sid] = 1
    versions = runtime_versions()
    with warnings.catch_warnings():
        # 0/1 integers are the truth here (no missing values), so MLflow's hint does not apply;
        # the estimator was fitted on arrays, MLflow predicts the example from a DataFrame.
        warnings.filterwarnings("ignore", message=".*integer column")
        warnings.filterwarnings("ignore", message="X has feature names")
        signature = infer_signature(example, model.estimator.predict(example.to_numpy(np.float32)))
        mlflow.sklearn.log_model(
            sk_model=model.estimator,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format="cloudpickle",
            pip_requirements=[
                f"scikit-learn=={versions['scikit-learn']}",
                f"numpy=={versions['numpy']}",
                f"joblib=={versions['joblib']}",
            ],
            extra_files=[str(model_dir / "model.joblib"), str(model_dir / "metadata.json")],
        )
    mlflow.log_artifacts(str(model_dir), artifact_path="kserve")


def _champion_score(
    client: Any,
    name: str,
    store: ObjectStore,
    dataset_path: Path,
    evaluation: dict[str, Any],
    vignettes_per_pattern: int,
) -> tuple[str | None, float | None, str]:
    """(champion version, its gate metric, a note) on the challenger's held-out vignettes.

    Re-scoring is fair only if the champion was trained with the same split: otherwise some
    of today's held-out patterns were in its training data. Then its recorded score is used.
    """
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None, ""
    metric, split = evaluation["gate_metric"], evaluation["split"]
    recorded = champion.tags.get(metric)
    fallback = (champion.version, float(recorded) if recorded else None)
    if not (uri := champion.tags.get("storage_uri")):
        return (*fallback, "champion has no stored model; its recorded score is used")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            previous = SymptomClassifier.load(store.download_dir(uri, Path(tmp) / "m"))
        except SymptomDxError as e:
            return (*fallback, f"champion not re-scored ({e}); its recorded score is used")
    trained = previous.metadata.get("training", {})
    if (trained.get("test_fraction"), trained.get("split_seed")) != (
        split["test_fraction"],
        split["split_seed"],
    ):
        return (*fallback, "champion was trained on another split; its recorded score is used")
    test = held_out(dataset_path, split["test_fraction"], split["split_seed"])
    scores = evaluate(previous, test, vignettes_per_pattern, seed=split["split_seed"])
    return champion.version, flatten_metrics(scores)[metric], ""


def _rollback(
    client: Any,
    store: ObjectStore,
    name: str,
    version: str | None,
    storage_prefix: str,
    run_id: str | None,
) -> None:
    """Undo what a failed registration wrote: the version, the stored files, the run.

    Best effort: the original failure is what gets reported.
    """
    if version is not None:
        with contextlib.suppress(Exception):
            client.delete_model_version(name, version)
    if storage_prefix:
        with contextlib.suppress(SymptomDxError):
            store.delete_prefix(storage_prefix + "/")
    if run_id is not None:
        # Marked failed and deleted: restorable with `mlflow runs restore`, and
        # `mlflow gc` purges its artifacts.
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
            client.delete_run(run_id)


# -- helpers --------------------------------------------------------------------------------
def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def _replace_dir(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.move(str(src), str(dest))
