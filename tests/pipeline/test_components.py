"""Each component's function called directly (its python_func), no KFP runner."""

import json
import shutil
from pathlib import Path

import pytest
from kfp import dsl

from components.evaluate.component import evaluate_candidates
from components.ingest.component import ingest_dataset
from components.split.component import split_dataset
from components.train.component import train_candidates
from symptom_dx import kaggle
from symptom_dx.candidates import HYPERPARAMETERS
from symptom_dx.config import DEFAULTS
from symptom_dx.knowledge import KNOWLEDGE_FILES

TRAIN_PARAMS = {
    k: getattr(DEFAULTS, k) for k in ("algorithms", *HYPERPARAMETERS, "dropout_samples", "seed")
}


def artifact(cls, path):
    return cls(uri=str(path))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("components")
    dataset = artifact(dsl.Dataset, root / "dataset.csv")
    stats = artifact(dsl.Markdown, root / "statistics.md")
    knowledge = artifact(dsl.Artifact, root / "knowledge")
    sha = ingest_dataset.python_func(
        dataset=dataset,
        statistics=stats,
        knowledge=knowledge,
        source=str(data_dir / "Training.csv"),
        sha256="cc00c869b702c0c90eef3c1fb4d0b54f16965f8def2dec7e1bf91d0b76480ac3",
        store_in_bucket=False,
    )
    return root, dataset, stats, sha


@pytest.fixture(scope="module")
def split(ingested):
    root, dataset, _, _ = ingested
    train_set = artifact(dsl.Dataset, root / "train.csv")
    test_set = artifact(dsl.Dataset, root / "test.csv")
    split_dataset.python_func(
        dataset=dataset,
        train_set=train_set,
        test_set=test_set,
        test_fraction=DEFAULTS.test_fraction,
        split_seed=DEFAULTS.split_seed,
    )
    return train_set, test_set


def test_split_writes_disjoint_pattern_sets(split):
    train_set, test_set = split
    assert train_set.metadata["train_patterns"] + train_set.metadata["test_patterns"] == 304
    train_rows = set(Path(train_set.path).read_text().splitlines()[1:])
    test_rows = set(Path(test_set.path).read_text().splitlines()[1:])
    assert len(test_rows) == test_set.metadata["test_patterns"] and not train_rows & test_rows


def test_ingest_checks_the_knowledge_tables_against_their_pins(
    ingested, tmp_path, data_dir, capsys
):
    root, *_ = ingested
    assert sorted(p.name for p in (root / "knowledge").iterdir()) == sorted(KNOWLEDGE_FILES)
    edited = tmp_path / "edited"
    shutil.copytree(data_dir, edited)
    path = edited / "symptom_precaution.csv"
    path.write_text(path.read_text().replace("consult", "ignore"))
    with pytest.raises(SystemExit):
        ingest_dataset.python_func(
            dataset=artifact(dsl.Dataset, tmp_path / "out" / "dataset.csv"),
            statistics=artifact(dsl.Markdown, tmp_path / "out" / "s.md"),
            knowledge=artifact(dsl.Artifact, tmp_path / "out" / "knowledge"),
            source=str(edited / "Training.csv"),
            sha256=kaggle.sha256_pin("Training.csv"),
            store_in_bucket=False,
        )
    assert "ingest: checksum mismatch for" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_ingest_writes_canonical_dataset_and_statistics(ingested):
    root, dataset, _stats, sha = ingested
    assert sha.startswith("cc00c869")
    header = (root / "dataset.csv").read_text().splitlines()[0].split(",")
    assert header[13] == "spotting_urination" and header[-1] == "prognosis"
    assert dataset.metadata["distinct_patterns"] == 304
    assert "distinct_patterns | 304" in (root / "statistics.md").read_text()


def test_ingest_rejects_a_wrong_checksum_and_writes_nothing(tmp_path, data_dir, capsys):
    out = tmp_path / "dataset.csv"
    with pytest.raises(SystemExit) as e:
        ingest_dataset.python_func(
            dataset=artifact(dsl.Dataset, out),
            statistics=artifact(dsl.Markdown, tmp_path / "s.md"),
            knowledge=artifact(dsl.Artifact, tmp_path / "knowledge"),
            source=str(data_dir / "Training.csv"),
            sha256="0" * 64,
            store_in_bucket=False,
        )
    assert e.value.code == 1
    assert "ingest: checksum mismatch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_train_and_evaluate(split, tmp_path):
    train_set, test_set = split
    candidates = artifact(dsl.Model, tmp_path / "candidates")
    train_candidates.python_func(
        train_set=train_set,
        candidates=candidates,
        **{**TRAIN_PARAMS, "algorithms": "naive_bayes,logistic_regression", "dropout_samples": 10},
    )
    assert candidates.metadata["candidates"] == ["naive_bayes", "logistic_regression"]
    model = artifact(dsl.Model, tmp_path / "model")
    metrics = artifact(dsl.Metrics, tmp_path / "metrics")
    confusion = artifact(dsl.ClassificationMetrics, tmp_path / "confusion")
    evaluation = artifact(dsl.Artifact, tmp_path / "evaluation.json")
    best, score = evaluate_candidates.python_func(
        test_set=test_set,
        candidates=candidates,
        model=model,
        metrics=metrics,
        confusion_matrix=confusion,
        evaluation=evaluation,
        gate_metric=DEFAULTS.gate_metric,
        vignettes_per_pattern=DEFAULTS.vignettes_per_pattern,
        seed=DEFAULTS.seed,
    )
    assert best in {"naive_bayes", "logistic_regression"}
    assert score == pytest.approx(metrics.metadata["k3_top1"], abs=1e-6)
    assert score > 0.85
    assert {"k2_top1", "k3_top3", "k4_macro_f1", "full_log_loss", "k3_ece"} <= set(metrics.metadata)
    matrix = confusion.metadata["confusionMatrix"]
    assert len(matrix["annotationSpecs"]) == 41 and len(matrix["rows"]) == 41
    result = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(result["candidates"]) == {"naive_bayes", "logistic_regression"}
    assert result["plan"] == {"vignettes_per_pattern": 20, "seed": 0}
    assert result["training"]["split"]["test_fraction"] == DEFAULTS.test_fraction
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "metadata.json",
        "model.joblib",
    ]


def test_train_rejects_unknown_algorithm(split, tmp_path, capsys):
    train_set, _ = split
    with pytest.raises(SystemExit):
        train_candidates.python_func(
            train_set=train_set,
            candidates=artifact(dsl.Model, tmp_path / "c"),
            **{**TRAIN_PARAMS, "algorithms": "svm"},
        )
    assert "train: unknown algorithm(s) svm" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_split_rejects_a_bad_fraction(ingested, tmp_path, capsys):
    _, dataset, _, _ = ingested
    with pytest.raises(SystemExit):
        split_dataset.python_func(
            dataset=dataset,
            train_set=artifact(dsl.Dataset, tmp_path / "train.csv"),
            test_set=artifact(dsl.Dataset, tmp_path / "test.csv"),
            test_fraction=1.5,
            split_seed=0,
        )
    assert "split: bad pipeline parameter(s): test_fraction = 1.5 must be > 0.0 and <= 0.9" in (
        capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nb_alpha": -1.0}, "nb_alpha = -1.0 must be >= 0.0"),
        ({"lr_c": 0.0}, "lr_c = 0.0 must be > 0.0"),
        ({"rf_n_estimators": 0}, "rf_n_estimators = 0 must be >= 1"),
        ({"dropout_samples": -3}, "dropout_samples = -3 must be >= 0"),
    ],
)
def test_train_rejects_bad_parameters(split, tmp_path, capsys, params, message):
    train_set, _ = split
    with pytest.raises(SystemExit):
        train_candidates.python_func(
            train_set=train_set,
            candidates=artifact(dsl.Model, tmp_path / "c"),
            **{**TRAIN_PARAMS, **params},
        )
    assert f"train: bad pipeline parameter(s): {message}" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
