"""The model wrapper: train a candidate, rank diseases for symptom sets, explain, ask next.

``model.joblib`` holds the plain scikit-learn estimator (KServe's stock sklearn runtime can
load it and predict on the 132-wide vector); ``metadata.json`` beside it holds what the
wrapper adds: vocabulary, classes, disease symptom profiles, the training reference (what the
model saw: symptom and disease shares, for drift monitoring), metrics and versions.

``model.joblib`` is a pickle: whoever can write it runs code in the process that loads it.
``SymptomClassifier.load(folder, sha256=...)`` checks the file against the digest recorded at
registration (``model_sha256``) before unpickling it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from symptom_dx import __version__
from symptom_dx.errors import SymptomDxError
from symptom_dx.features import symptom_dropout
from symptom_dx.vocabulary import vocabulary

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# A symptom present in at least this share of a disease's training patterns is "typical" of it.
TYPICAL_SHARE = 0.5
# Profile frequencies are kept away from 0 and 1 so that one answer never rules a disease out.
_PROFILE_EPS = 0.02

ALGORITHMS = ("logistic_regression", "naive_bayes", "random_forest")
# metadata.json key of the training reference (see ``training_reference``)
TRAINING_REFERENCE = "training_reference"


def make_estimator(algorithm: str, params: dict[str, Any], seed: int) -> Any:
    """A fresh scikit-learn estimator for one of ``ALGORITHMS``."""
    # scikit-learn is imported where it is used: the steps that neither train nor score
    # (ingest, split, deploy) start ~1.5 s faster without it.
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    if algorithm == "logistic_regression":
        return LogisticRegression(C=float(params.get("C", 10.0)), max_iter=3000, random_state=seed)
    if algorithm == "naive_bayes":
        return MultinomialNB(alpha=float(params.get("alpha", 0.1)))
    if algorithm == "random_forest":
        return RandomForestClassifier(
            n_estimators=int(params.get("n_estimators", 100)),
            max_depth=params.get("max_depth") or None,
            random_state=seed,
            n_jobs=1,
        )
    raise SymptomDxError(f"unknown algorithm '{algorithm}' (choose from {', '.join(ALGORITHMS)})")


@dataclass
class Differential:
    """The ranked answer for one patient."""

    diseases: list[str]
    probabilities: list[float]
    # for each candidate: the given symptoms typical of it / its typical symptoms not given
    supporting: list[list[str]]
    missing: list[list[str]]
    # the symptom whose yes/no answer is expected to separate the candidates best
    next_question: str | None


@dataclass
class SymptomClassifier:
    estimator: Any
    classes: list[str]
    # [n_classes, n_symptoms]: share of each disease's distinct training patterns with the symptom
    profiles: np.ndarray
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._order = np.array([list(self.estimator.classes_).index(c) for c in self.classes])
        # Both linear candidates score by softmax(x @ W + b); doing that ourselves is far
        # cheaper than predict_proba's input validation for a single row.
        linear = _linear_form(self.estimator)
        self._linear = linear is not None
        if linear is not None:
            weights, bias = linear
            self._weights = np.ascontiguousarray(weights[self._order].T, dtype=np.float64)
            self._bias = np.asarray(bias[self._order], dtype=np.float64)
        likelihood = np.clip(self.profiles, _PROFILE_EPS, 1 - _PROFILE_EPS)
        self._likelihood = likelihood
        # [L | L log L + (1 - L) log(1 - L)]: next_question's one matrix-vector product
        self._question_terms = np.hstack([likelihood, _xlogx(likelihood) + _xlogx(1 - likelihood)])
        self._typical = self.profiles >= TYPICAL_SHARE
        selectable = np.zeros(self.profiles.shape[1], dtype=bool)
        selectable[[s.position for s in vocabulary().selectable]] = True
        self._askable = selectable & (self.profiles.max(axis=0) > 0)
        # rank() builds its explanations from these in plain Python (no per-element numpy):
        # the ids, each class's typical positions ascending and most-typical-first.
        self._ids = vocabulary().ids
        self._typical_sets = [frozenset(np.flatnonzero(row).tolist()) for row in self._typical]
        by_share = np.argsort(-self.profiles, axis=1, kind="stable").tolist()
        self._typical_by_share = [
            [j for j in order if self._typical[c, j]] for c, order in enumerate(by_share)
        ]

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        algorithm: str,
        params: dict[str, Any] | None = None,
        dropout_samples: int = 0,
        seed: int = 0,
    ) -> SymptomClassifier:
        """Fit on distinct patterns plus ``dropout_samples`` partial copies of each."""
        params = dict(params or {})
        classes = sorted(set(map(str, y)))
        Xa, ya = symptom_dropout(X, y, dropout_samples, seed=seed)
        estimator = make_estimator(algorithm, params, seed)
        estimator.fit(Xa.astype(np.float32), ya.astype(str))
        profiles = disease_profiles(X, y, classes)
        reference = {TRAINING_REFERENCE: training_reference(X, y, classes)}
        return cls(estimator, classes, profiles, algorithm, params, reference)

    # -- inference --------------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """[N, 132] 0/1 -> [N, n_classes] probabilities in ``classes`` order."""
        if self._linear:
            return _softmax(X @ self._weights + self._bias)
        return self.estimator.predict_proba(X.astype(np.float32))[:, self._order]

    def predict_proba_positions(self, patients: Sequence[Sequence[int]]) -> np.ndarray:
        """Like ``predict_proba`` for patients given as symptom positions (no vector built)."""
        if self._linear:
            if len(patients) == 1:  # the common single-patient request: no stacking
                logits = (self._weights[list(patients[0])].sum(axis=0) + self._bias)[None, :]
            else:
                rows = [self._weights[list(p)].sum(axis=0) for p in patients]
                logits = np.stack(rows) + self._bias
            return _softmax(logits)
        X = np.zeros((len(patients), self.profiles.shape[1]), dtype=np.float32)
        for i, p in enumerate(patients):
            X[i, list(p)] = 1
        return self.predict_proba(X)

    def rank(
        self,
        present: Sequence[Sequence[int]],
        top_k: int = 5,
        absent: Sequence[Sequence[int]] | None = None,
        proba: np.ndarray | None = None,
    ) -> list[Differential]:
        """Top-k differentials for patients given as present (and denied) symptom positions.

        Denied symptoms re-weight the model's probabilities by each disease's profile
        (P(symptom absent | disease)), since the model itself treats 0 as "not reported".
        """
        if proba is None:
            proba = self.predict_proba_positions(present)
        ids = self._ids
        k = max(1, min(top_k, len(self.classes)))
        out: list[Differential] = []
        for i, pos in enumerate(present):
            p = proba[i]
            denied = list(absent[i]) if absent else []
            if denied:
                p = p * np.prod(1 - self._likelihood[:, denied], axis=1)
                p = p / p.sum()
            top = np.argsort(-p, kind="stable")[:k].tolist()
            given_set = set(pos)
            given_sorted = sorted(given_set)
            supporting, missing = [], []
            for c in top:
                typical = self._typical_sets[c]
                supporting.append([ids[j] for j in given_sorted if j in typical])
                missing.append([ids[j] for j in self._typical_by_share[c] if j not in given_set])
            asked = np.zeros(self.profiles.shape[1], dtype=bool)
            asked[given_sorted] = True
            asked[denied] = True
            out.append(
                Differential(
                    diseases=[self.classes[c] for c in top],
                    probabilities=[float(p[c]) for c in top],
                    supporting=supporting,
                    missing=missing,
                    next_question=self.next_question(p, asked),
                )
            )
        return out

    def next_question(self, p: np.ndarray, asked: np.ndarray) -> str | None:
        """The unasked symptom with the lowest expected entropy over diseases after its answer.

        With joint_cs = p_c L_cs and P(yes)_s = sum_c joint_cs, the expected entropy is
        P(yes) log P(yes) + P(no) log P(no) - sum_c p_c log p_c - (p @ (L log L + L' log L'))_s
        (L' = 1 - L). The p log p sum is the same for every symptom, so one matrix-vector
        product with [L | L log L + L' log L'] ranks them all.
        """
        candidates = self._askable & ~asked
        if not candidates.any():
            return None
        n = self._likelihood.shape[1]
        r = p @ self._question_terms
        p_yes = r[:n]
        h = p_yes * np.log(p_yes) + (1 - p_yes) * np.log1p(-p_yes) - r[n:]
        h[~candidates] = np.inf
        return self._ids[int(np.argmin(h))]

    # -- persistence --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Metadata written beside the model: what a server or a person needs to use it."""
        ids = vocabulary().ids
        return {
            "format": "symptom-dx/1",
            "algorithm": self.algorithm,
            "params": self.params,
            "vocabulary": list(ids),
            "classes": self.classes,
            "profiles": {
                c: {ids[j]: round(float(f), 4) for j, f in enumerate(row) if f > 0}
                for c, row in zip(self.classes, self.profiles, strict=True)
            },
            "versions": runtime_versions(),
            **self.metadata,
        }

    def save(self, directory: str | Path) -> Path:
        """Write model.joblib and metadata.json; the folder appears whole or not at all."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=directory.parent))
        try:
            joblib.dump(self.estimator, tmp / MODEL_FILE)
            (tmp / METADATA_FILE).write_text(json.dumps(self.describe(), indent=1) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @property
    def reference(self) -> TrainingReference | None:
        """What the model saw in training (None for models saved before it was recorded)."""
        table = self.metadata.get(TRAINING_REFERENCE)
        return None if table is None else TrainingReference.from_json(table, self.classes)

    @classmethod
    def load(cls, directory: str | Path, sha256: str | None = None) -> SymptomClassifier:
        """Read a model folder; any defect is a SymptomDxError naming the folder and the cause.

        With ``sha256`` (hex), ``model.joblib`` must have that digest: it is checked before the
        file is unpickled, and a different file is refused.
        """
        directory = Path(directory)
        for name in (MODEL_FILE, METADATA_FILE):
            if not (directory / name).is_file():
                raise SymptomDxError(f"model directory {directory} has no {name}")
        if sha256:
            expected = _hex_digest(sha256)
            actual = model_sha256(directory)
            if actual != expected:
                raise SymptomDxError(
                    f"{directory / MODEL_FILE} has sha256 {actual}, expected {expected}: "
                    "refusing to unpickle a model file that is not the registered one"
                )
        try:
            meta = json.loads((directory / METADATA_FILE).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SymptomDxError(f"cannot read {directory / METADATA_FILE}: {e}") from None
        if not isinstance(meta, dict) or meta.get("vocabulary") != list(vocabulary().ids):
            raise SymptomDxError(
                f"model in {directory} was trained on another symptom vocabulary; retrain it"
            )
        try:
            ids = {s: j for j, s in enumerate(meta["vocabulary"])}
            profiles = np.zeros((len(meta["classes"]), len(ids)))
            for c, name in enumerate(meta["classes"]):
                for s, f in meta["profiles"][name].items():
                    profiles[c, ids[s]] = f
            algorithm = meta["algorithm"]
        except (KeyError, TypeError, ValueError) as e:
            raise SymptomDxError(f"{directory / METADATA_FILE} is incomplete: {e!r}") from None
        try:
            estimator = joblib.load(directory / MODEL_FILE)
        except Exception as e:  # unpickling can fail in many ways (versions, truncation)
            raise SymptomDxError(
                f"cannot load {directory / MODEL_FILE}: {type(e).__name__}: {e}"
                " (trained with other library versions? see metadata.json 'versions')"
            ) from None
        known = {"format", "algorithm", "params", "vocabulary", "classes", "profiles", "versions"}
        try:
            return cls(
                estimator=estimator,
                classes=list(meta["classes"]),
                profiles=profiles,
                algorithm=algorithm,
                params=meta.get("params", {}),
                metadata={k: v for k, v in meta.items() if k not in known},
            )
        except (AttributeError, ValueError) as e:
            raise SymptomDxError(
                f"model in {directory} does not match its metadata.json: {e}"
            ) from None


@dataclass(frozen=True)
class TrainingReference:
    """The training data's mix, for comparing live traffic with it (drift).

    Both tables count distinct training patterns (the (symptom vector, disease) pairs the model
    was fitted on, before symptom-dropout copies): ``symptom_share[s]`` is the share of them
    with symptom ``s`` (every vocabulary id), ``disease_share[d]`` the share labelled ``d``
    (every class of the model; they sum to 1).
    """

    patterns: int
    symptom_share: dict[str, float]
    disease_share: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "patterns": self.patterns,
            "symptom_share": self.symptom_share,
            "disease_share": self.disease_share,
        }

    @classmethod
    def from_json(cls, table: Any, classes: Sequence[str]) -> TrainingReference:
        """Read and check the table of metadata.json (every id and class, shares in [0, 1])."""
        try:
            reference = cls(
                int(table["patterns"]),
                {str(k): float(v) for k, v in table["symptom_share"].items()},
                {str(k): float(v) for k, v in table["disease_share"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SymptomDxError(
                f"{TRAINING_REFERENCE} in metadata.json is malformed: {e!r}"
            ) from None
        shares = [*reference.symptom_share.values(), *reference.disease_share.values()]
        if (
            set(reference.symptom_share) != set(vocabulary().ids)
            or set(reference.disease_share) != set(classes)
            or not all(0.0 <= v <= 1.0 for v in shares)
        ):
            raise SymptomDxError(
                f"{TRAINING_REFERENCE} in metadata.json does not cover the vocabulary and the "
                "model's classes with shares from 0 to 1"
            )
        return reference


def training_reference(X: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """The ``TrainingReference`` table of distinct (pattern, disease) pairs in ``X, y``."""
    y = np.asarray(y).astype(str)
    pairs = {(row.tobytes(), label): i for i, (row, label) in enumerate(zip(X, y, strict=True))}
    idx = np.fromiter(pairs.values(), dtype=np.int64, count=len(pairs))
    n = max(len(idx), 1)
    present = (np.asarray(X)[idx] > 0).sum(axis=0)
    labels = y[idx]
    return TrainingReference(
        patterns=len(idx),
        symptom_share={
            s: round(float(c) / n, 6) for s, c in zip(vocabulary().ids, present, strict=True)
        },
        disease_share={d: round(float((labels == d).sum()) / n, 6) for d in classes},
    ).to_json()


def model_sha256(directory: str | Path) -> str:
    """The sha256 (hex) of the folder's ``model.joblib``: what registration records and the
    server checks (``--model_sha256``)."""
    digest = hashlib.sha256()
    with (Path(directory) / MODEL_FILE).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hex_digest(value: str) -> str:
    digest = value.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise SymptomDxError(f"a sha256 is 64 hexadecimal digits, got {value!r}")
    return digest


def disease_profiles(X: np.ndarray, y: np.ndarray, classes: list[str]) -> np.ndarray:
    """Share of each disease's distinct patterns in which each symptom is present."""
    y = np.asarray(y).astype(str)
    profiles = np.zeros((len(classes), X.shape[1]))
    for c, name in enumerate(classes):
        rows = np.unique(X[y == name], axis=0)
        if len(rows):
            profiles[c] = rows.mean(axis=0)
    return profiles


def runtime_versions() -> dict[str, str]:
    """Library versions a pickled model depends on: serving must match them."""
    return {
        "symptom_dx": __version__,
        "python": platform.python_version(),
        "scikit-learn": version("scikit-learn"),
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def _linear_form(estimator: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(W [n_classes, n_features], b [n_classes]) with predict_proba = softmax(x @ W.T + b)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    if isinstance(estimator, LogisticRegression) and len(estimator.classes_) > 2:
        return estimator.coef_, estimator.intercept_
    if isinstance(estimator, MultinomialNB):
        return estimator.feature_log_prob_, estimator.class_log_prior_
    return None


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x log x, with 0 log 0 = 0."""
    return x * np.log(x, out=np.zeros_like(x), where=x > 0)
