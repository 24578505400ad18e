"""The model wrapper: train a candidate, rank diseases for symptom sets, explain, ask next.

``model.joblib`` holds the plain scikit-learn estimator (KServe's stock sklearn runtime can
load it and predict on the 132-wide vector); ``metadata.json`` beside it holds what the
wrapper adds: vocabulary, classes, disease symptom profiles, the training reference (what the
model saw: symptom and disease shares, for drift monitoring), the out-of-pattern threshold
(below it, a symptom set fits no disease's patterns), metrics and versions.

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
from itertools import chain, combinations
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from symptom_dx import __version__
from symptom_dx.candidates import ALGORITHMS, CANDIDATES
from symptom_dx.errors import SymptomDxError
from symptom_dx.features import symptom_dropout
from symptom_dx.vocabulary import vocabulary

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# A symptom present in at least this share of a disease's training patterns is "typical" of it.
TYPICAL_SHARE = 0.5
# Profile frequencies are kept away from 0 and 1 so that one answer never rules a disease out.
_PROFILE_EPS = 0.02

# Expected entropies of two candidate questions this close count as tied (their computed values
# differ from the single-row product's by far less, about 1e-15): see _next_positions.
_TIE_TOLERANCE = 1e-9
# explain_joined reads a class's explanation from a table when at most this many of its typical
# symptoms are given (people type three or four): every such set of every class, 5,899 entries
# for the default candidate, ~2 MB, built in ~7 ms when a model first explains a batch
EXPLAINED_SUBSET_SIZE = 3
# metadata.json key of the training reference (see ``training_reference``)
TRAINING_REFERENCE = "training_reference"
# metadata.json key of the out-of-pattern threshold (see ``out_of_pattern_calibration``)
OUT_OF_PATTERN = "out_of_pattern"
# Share of held-out k-symptom vignettes the out-of-pattern threshold may flag, and their k.
OUT_OF_PATTERN_QUANTILE = 0.05
OUT_OF_PATTERN_VIGNETTE_SIZE = 3
# Scores this close to the threshold count as at it (not flagged): calibration scores pile up
# on a few values (shares like 3/4 of a disease's patterns) and the threshold is one of them.
_SCORE_TOLERANCE = 1e-9
# metadata.json stores profile shares with this many decimals.
_PROFILE_DECIMALS = 4


def make_estimator(algorithm: str, params: dict[str, Any], seed: int) -> Any:
    """A fresh scikit-learn estimator for one of ``ALGORITHMS`` (``symptom_dx.candidates``),
    with ``params`` by estimator keyword and the candidate's defaults for any not given."""
    if algorithm not in CANDIDATES:
        raise SymptomDxError(
            f"unknown algorithm '{algorithm}' (choose from {', '.join(ALGORITHMS)})"
        )
    return CANDIDATES[algorithm].estimator(params, seed)


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
    # the symptoms fit no disease's training patterns: no candidate deserves confidence
    out_of_pattern: bool = False


@dataclass(frozen=True)
class RankedArrays:
    """``SymptomClassifier.rank_arrays``' answer for N patients: ``rank``'s values as arrays
    (row i is patient i), for encoding into tensors without building ``Differential`` objects.

    ``classes[top[i, j]]`` is ``rank(...)[i].diseases[j]``, ``probabilities[i, j]`` its
    probability, and ``vocabulary().ids[next_question[i]]`` its next question (-1: none left).
    """

    top: np.ndarray  # [N, k] int: class indices, most probable first (ties: lower index first)
    probabilities: np.ndarray  # [N, k] float64
    next_question: np.ndarray  # [N] int: symptom position, -1 when every askable one was asked


@dataclass(frozen=True)
class RankedColumns:
    """``rank``'s answer for N patients as flat, row-major columns (the contract's output
    tensors hold them so): ``k`` diseases a patient, each with its probability and its
    supporting and missing ids joined by one separator, then one next question (``""`` for
    none) and one out-of-pattern flag a patient."""

    k: int
    diseases: list[str]  # N * k
    probabilities: np.ndarray  # [N, k] float64
    supporting: list[str]  # N * k
    missing: list[str]  # N * k
    next_question: list[str]  # N
    out_of_pattern: list[bool]  # N

    @property
    def top(self) -> list[str]:
        """Each patient's most probable disease."""
        return self.diseases[:: self.k]


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
        self._unaskable = np.flatnonzero(~self._askable)
        # rank() builds its explanations from these in plain Python (no per-element numpy):
        # the ids, each class's typical positions ascending and most-typical-first.
        self._ids = vocabulary().ids
        self._typical_sets = [frozenset(np.flatnonzero(row).tolist()) for row in self._typical]
        by_share = np.argsort(-self.profiles, axis=1, kind="stable").tolist()
        self._typical_by_share = [
            [j for j in order if self._typical[c, j]] for c, order in enumerate(by_share)
        ]
        # ... and as id lists, copied into ``missing`` less the given ones
        self._typical_ids_by_share = [
            [self._ids[j] for j in order] for order in self._typical_by_share
        ]
        self._class_names = np.array(self.classes, dtype=object)
        # The out-of-pattern score's log-likelihoods, from the profiles as metadata.json stores
        # them: a model scores alike before saving and after loading, as its calibration did.
        self._pattern_table = _pattern_table(self.profiles)
        # explain_joined's: a class's typical positions as a bitmask, and its table of answers
        self._position_bits = [1 << j for j in range(self.profiles.shape[1])]
        self._typical_positions = [sorted(t) for t in self._typical_sets]
        self._typical_masks = [sum(self._position_bits[j] for j in t) for t in self._typical_sets]
        self._explained_by_separator: dict[str, list[dict[int, tuple[str, str]]]] = {}
        self._init_batch_tables()

    def _init_batch_tables(self) -> None:
        """Tables of the array-at-a-time path (``rank_arrays``).

        Patients arrive as position lists of different lengths; they are padded with position
        ``n`` (one past the vocabulary), whose row adds 0 to the logits and multiplies the
        denied-symptom factors by 1, so padding never changes a value.
        """
        n_classes, n = self.profiles.shape
        if self._linear:
            self._weights_padded = np.vstack([self._weights, np.zeros((1, n_classes))])
        # [n + 1, n_classes]: P(symptom absent | disease), the factor a denied symptom applies
        self._absent_factor = np.vstack([(1 - self._likelihood).T, np.ones((1, n_classes))])
        # Symptoms with the same likelihood column always have the same expected entropy:
        # next_question scores one representative per group (fewer columns), and the answer is
        # the group's lowest-position unasked member, as argmin over all columns picks it.
        askable = np.flatnonzero(self._askable)
        _, first, inverse = np.unique(
            self._likelihood[:, askable].T, axis=0, return_index=True, return_inverse=True
        )
        representatives = askable[first]
        # the two halves of _question_terms, one column per group (contiguous products)
        self._question_yes = np.ascontiguousarray(self._question_terms[:, representatives])
        self._question_entropy = np.ascontiguousarray(self._question_terms[:, n + representatives])
        # position -> its group (unaskable positions and the padding: any, they are set to inf)
        group = np.zeros(n + 1, dtype=np.intp)
        group[askable] = inverse.reshape(-1)
        self._question_group = group
        self._unaskable_or_padding = np.append(self._unaskable, n)
        # [groups, largest group] each group's positions, padded with n
        members = [askable[inverse.reshape(-1) == g].tolist() for g in range(len(first))]
        self._group_members = _padded(members, n)

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
        metadata = {TRAINING_REFERENCE: training_reference(X, y, classes)}
        calibration = out_of_pattern_calibration(X, y, classes, seed=seed)
        if calibration is not None:
            metadata[OUT_OF_PATTERN] = calibration
        return cls(estimator, classes, profiles, algorithm, params, metadata)

    # -- inference --------------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """[N, 132] 0/1 -> [N, n_classes] probabilities in ``classes`` order."""
        if self._linear:
            return _softmax(X @ self._weights + self._bias)
        return self.estimator.predict_proba(X.astype(np.float32))[:, self._order]

    def predict_proba_positions(self, patients: Sequence[Sequence[int]]) -> np.ndarray:
        """Like ``predict_proba`` for patients given as symptom positions (no vector built)."""
        if len(patients) == 1:  # the common single-patient request
            return self._proba_one(patients[0])[None, :]
        return self._proba_padded(_padded(patients, self.profiles.shape[1]))

    def _proba_one(self, given: Sequence[int]) -> np.ndarray:
        """[n_classes] probabilities of one patient (the same floats as in any batch)."""
        if self._linear:
            # ufunc reductions and in-place steps: numpy's Python wrappers (sum, max) cost
            # more than the arithmetic on 41 numbers; the same floats as ``_softmax``
            z = np.add.reduce(self._weights[list(given)], axis=0)
            z += self._bias
            z -= np.maximum.reduce(z)
            e = np.exp(z, out=z)
            e /= np.add.reduce(e)
            return e
        X = np.zeros((1, self.profiles.shape[1]), dtype=np.float32)
        X[0, list(given)] = 1
        return self.predict_proba(X)[0]

    def _proba_padded(self, idx: np.ndarray) -> np.ndarray:
        """``predict_proba_positions`` of patients given as ``_padded`` positions."""
        if self._linear:
            # One gather and one sum for all rows. The sum runs over the positions in the
            # order given, as the single-row sum does, so a patient's probabilities are the
            # same floats whatever batch it comes in (a 0/1 matrix product would add them in
            # column order instead, and was no faster: bench/rank_bench.py).
            return _softmax(self._weights_padded[idx].sum(axis=1) + self._bias)
        n = self.profiles.shape[1]
        X = np.zeros((len(idx), n + 1), dtype=np.float32)
        X[np.arange(len(idx))[:, None], idx] = 1
        return self.predict_proba(X[:, :n])

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
        ``rank_arrays`` gives the same answer as arrays; this adds the explanations.
        """
        if len(present) == 1:  # the hottest path: one patient, no arrays of rows
            denied = list(absent[0]) if absent else []
            top, probabilities, question = self._rank_one(present[0], top_k, denied, proba)
            supporting, missing = self._explain_one(set(present[0]), top, denied)
            return [
                Differential(
                    diseases=[self.classes[c] for c in top],
                    probabilities=probabilities,
                    supporting=supporting,
                    missing=missing,
                    next_question=self._ids[question] if question >= 0 else None,
                    out_of_pattern=bool(self.out_of_pattern(present)[0]),
                )
            ]
        ranked = self.rank_arrays(present, top_k, absent, proba)
        supporting, missing = self.explain(present, ranked.top, absent)
        ids = self._ids
        questions = [ids[q] if q >= 0 else None for q in ranked.next_question.tolist()]
        return [
            Differential(diseases, probabilities, s, m, q, flag)
            for diseases, probabilities, s, m, q, flag in zip(
                self._class_names[ranked.top].tolist(),
                ranked.probabilities.tolist(),
                supporting,
                missing,
                questions,
                self.out_of_pattern(present).tolist(),
                strict=True,
            )
        ]

    def rank_columns(
        self,
        present: Sequence[Sequence[int]],
        top_k: int = 5,
        absent: Sequence[Sequence[int]] | None = None,
        separator: str = ",",
    ) -> RankedColumns:
        """``rank`` as columns (see ``RankedColumns``); many patients are ranked as arrays
        (``rank_arrays``, ``explain_joined``), with no ``Differential`` built."""
        if len(present) == 1:  # the hottest path: ``rank``'s single row, no Differential
            denied = list(absent[0]) if absent else []
            top, probabilities, question = self._rank_one(present[0], top_k, denied, None)
            supporting, missing = self.explain_joined(present, [top], separator, absent)
            classes = self.classes
            return RankedColumns(
                k=len(top),
                diseases=[classes[c] for c in top],
                probabilities=np.array([probabilities]),
                supporting=supporting,
                missing=missing,
                next_question=[self._ids[question] if question >= 0 else ""],
                out_of_pattern=[bool(self.out_of_pattern(present)[0])],
            )
        ranked = self.rank_arrays(present, top_k, absent)
        supporting, missing = self.explain_joined(present, ranked.top, separator, absent)
        ids = self._ids
        return RankedColumns(
            k=ranked.top.shape[1],
            diseases=self._class_names[ranked.top].ravel().tolist(),
            probabilities=ranked.probabilities,
            supporting=supporting,
            missing=missing,
            next_question=[ids[q] if q >= 0 else "" for q in ranked.next_question.tolist()],
            out_of_pattern=self.out_of_pattern(present).tolist(),
        )

    def rank_arrays(
        self,
        present: Sequence[Sequence[int]],
        top_k: int = 5,
        absent: Sequence[Sequence[int]] | None = None,
        proba: np.ndarray | None = None,
    ) -> RankedArrays:
        """``rank`` without the explanations, as arrays (see ``RankedArrays``), computed for all
        patients at once: what a server can encode straight into tensors.

        ``proba`` ([N, n_classes], ``classes`` order) replaces the model's probabilities.
        """
        rows = len(present)
        if rows == 1:
            denied = list(absent[0]) if absent else []
            top, probabilities, question = self._rank_one(present[0], top_k, denied, proba)
            return RankedArrays(
                top=np.array([top]),
                probabilities=np.array([probabilities]),
                next_question=np.array([question]),
            )
        n = self.profiles.shape[1]
        k = max(1, min(top_k, len(self.classes)))
        present_idx = _padded(present, n)
        p = self._proba_padded(present_idx) if proba is None else np.asarray(proba)[:rows]
        denied = [absent[i] for i in range(rows)] if absent else [[]] * rows
        denied_idx = _padded(denied, n)
        if denied_idx.shape[1]:
            (with_denied,) = np.nonzero(denied_idx[:, 0] < n)
            # The product runs over the denied symptoms in the order given, as the single-row
            # product does (padding multiplies by 1): the same floats.
            factor = self._absent_factor[denied_idx[with_denied]].prod(axis=1)
            reweighted = p[with_denied] * factor
            reweighted /= reweighted.sum(axis=1, keepdims=True)
            p = p.astype(reweighted.dtype)  # a copy: the caller's proba stays as it was
            p[with_denied] = reweighted
        # A stable sort of the whole [N, 41] matrix: ties by class index, as one row's sort. On
        # real probabilities it beat argpartition with a tie fix-up and a default sort with a
        # re-sort of tied rows (bench/rank_bench.py).
        top = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return RankedArrays(
            top=top,
            probabilities=np.take_along_axis(p, top, axis=1),
            next_question=self._next_positions(p, present_idx, denied_idx, present, denied),
        )

    def _rank_one(
        self, given: Sequence[int], top_k: int, denied: list[int], proba: np.ndarray | None
    ) -> tuple[list[int], list[float], int]:
        """(top classes, their probabilities, next question's position or -1) of one patient:
        vector operations, cheaper at this size than the batch path's padding and masks."""
        p = self._proba_one(given) if proba is None else np.asarray(proba)[0]
        if denied:
            p = p * self._absent_factor[denied].prod(axis=0)
            p = p / p.sum()
        top = (-p).argsort(kind="stable")[: max(1, min(top_k, len(self.classes)))]
        return top.tolist(), p[top].tolist(), self._next_position(p, [*given, *denied])

    def explain(
        self,
        present: Sequence[Sequence[int]],
        top: np.ndarray,
        absent: Sequence[Sequence[int]] | None = None,
    ) -> tuple[list[list[list[str]]], list[list[list[str]]]]:
        """(supporting, missing) for each patient and each of its ``top`` classes ([N, k]): the
        given symptoms typical of the class (by position) / its typical symptoms neither given
        nor denied (most typical first)."""
        supporting: list[list[list[str]]] = []
        missing: list[list[list[str]]] = []
        denied_rows = absent or [()] * len(present)
        for given, classes, denied in zip(present, top.tolist(), denied_rows, strict=True):
            row_supporting, row_missing = self._explain_one(set(given), classes, denied)
            supporting.append(row_supporting)
            missing.append(row_missing)
        return supporting, missing

    def _explain_one(
        self, given: set[int], classes: list[int], denied: Sequence[int] = ()
    ) -> tuple[list[list[str]], list[list[str]]]:
        # Plain Python over precomputed per-class tables: ``missing`` is the class's list with
        # the supporting ids removed (C-level copy and removes, vs. a comprehension with set
        # lookups). With 3-5 given symptoms this beat masks over [N, k, 132] arrays turned
        # back into lists (bench/rank_bench.py).
        given_sorted = sorted(given)
        denied_ids = {self._ids[j] for j in denied}
        supporting: list[list[str]] = []
        missing: list[list[str]] = []
        for c in classes:
            typical = self._typical_sets[c]
            found, absent = self._typical_split(c, [j for j in given_sorted if j in typical])
            if denied:  # a symptom the patient denied is not missing: it was asked
                absent = [name for name in absent if name not in denied_ids]
            supporting.append(found)
            missing.append(absent)
        return supporting, missing

    def _typical_split(self, c: int, found: Sequence[int]) -> tuple[list[str], list[str]]:
        """Class ``c``'s typical symptoms at ``found`` (positions, ascending) as ids, and its
        other typical symptoms, most typical first."""
        ids = self._ids
        given = [ids[j] for j in found]
        others = self._typical_ids_by_share[c].copy()
        for name in given:
            others.remove(name)
        return given, others

    def explain_joined(
        self,
        present: Sequence[Sequence[int]],
        top: np.ndarray | list[list[int]],
        separator: str = ",",
        absent: Sequence[Sequence[int]] | None = None,
    ) -> tuple[list[str], list[str]]:
        """``explain`` as the contract's SUPPORTING and MISSING tensors hold it: flat lists of
        N * k strings (row-major), each list joined by ``separator``, no nested lists built.

        A cell's answer depends only on which of the class's typical symptoms were given: with
        nothing denied it is read from ``_explained`` by that set as a bitmask, one AND and one
        dict look-up a cell (64 patients' explanations: 47 us, against 220 us built as lists
        and joined)."""
        table = self._explained(separator)
        typical_masks = self._typical_masks
        bit = self._position_bits
        supporting: list[str] = []
        missing: list[str] = []
        denied_rows = absent or [()] * len(present)
        rows = top.tolist() if isinstance(top, np.ndarray) else top
        for given_positions, classes, denied in zip(present, rows, denied_rows, strict=True):
            if denied:  # a denied symptom leaves ``missing`` too: built as ``explain`` does
                row_supporting, row_missing = self._explain_one(
                    set(given_positions), classes, denied
                )
                supporting += [separator.join(names) for names in row_supporting]
                missing += [separator.join(names) for names in row_missing]
                continue
            given = 0
            for j in given_positions:
                given |= bit[j]
            for c in classes:
                found = given & typical_masks[c]
                cell = table[c].get(found)
                if cell is None:  # more typical symptoms given than the table holds
                    positions = [j for j in self._typical_positions[c] if found >> j & 1]
                    cell = self._explained_cell(c, positions, separator)
                supporting.append(cell[0])
                missing.append(cell[1])
        return supporting, missing

    def _explained(self, separator: str) -> list[dict[int, tuple[str, str]]]:
        """Per class: (supporting, missing) joined by ``separator``, by the bitmask of the
        given typical symptoms, for every set of up to ``EXPLAINED_SUBSET_SIZE`` of them. Built
        from the model alone (no patient's symptoms are kept), once per separator."""
        table = self._explained_by_separator.get(separator)
        if table is None:
            bit = self._position_bits
            table = []
            for c, typical in enumerate(self._typical_positions):
                cells = {}
                for size in range(EXPLAINED_SUBSET_SIZE + 1):
                    for subset in combinations(typical, size):
                        found = sum(bit[j] for j in subset)
                        cells[found] = self._explained_cell(c, subset, separator)
                table.append(cells)
            self._explained_by_separator[separator] = table
        return table

    def _explained_cell(self, c: int, found: Sequence[int], separator: str) -> tuple[str, str]:
        """(supporting, missing) of class ``c`` given its typical symptoms at ``found``
        (ascending): ``_typical_split`` joined."""
        given, others = self._typical_split(c, found)
        return separator.join(given), separator.join(others)

    def next_question(self, p: np.ndarray, asked: np.ndarray) -> str | None:
        """The unasked symptom with the lowest expected entropy over diseases after its answer.

        With joint_cs = p_c L_cs and P(yes)_s = sum_c joint_cs, the expected entropy is
        P(yes) log P(yes) + P(no) log P(no) - sum_c p_c log p_c - (p @ (L log L + L' log L'))_s
        (L' = 1 - L). The p log p sum is the same for every symptom, so one matrix-vector
        product with [L | L log L + L' log L'] ranks them all.
        """
        position = self._next_position(p, asked)
        return self._ids[position] if position >= 0 else None

    def _next_position(self, p: np.ndarray, asked: np.ndarray | list[int]) -> int:
        """``next_question`` as a position, -1 for none; ``asked`` a mask or positions.

        (In-place steps, fewer temporaries: the same floats as the expression above.)
        """
        n = self._likelihood.shape[1]
        r = p @ self._question_terms
        p_yes = r[:n]
        h = np.log(p_yes)
        h *= p_yes
        no = np.log1p(-p_yes)
        no *= 1 - p_yes
        h += no
        h -= r[n:]
        h[self._unaskable] = np.inf
        h[asked] = np.inf
        best = int(h.argmin())
        return -1 if h[best] == np.inf else best

    def _next_positions(
        self,
        p: np.ndarray,
        present_idx: np.ndarray,
        denied_idx: np.ndarray,
        present: Sequence[Sequence[int]],
        denied: Sequence[Sequence[int]],
    ) -> np.ndarray:
        """``_next_position`` for every row of ``p`` [N, n_classes], the asked symptoms given
        as lists and ``_padded``: one matrix product over the grouped symptoms.

        The matrix product adds in another order than the single-row product, so expected
        entropies can differ from it in the last bits; a row whose best two groups are closer
        than ``_TIE_TOLERANCE`` (a tie, or as good as one) is decided by the single-row
        computation, so the answer is always the one it gives.
        """
        rows = np.arange(len(p))[:, None]
        p_yes = p @ self._question_yes  # [N, groups]
        h = np.log(p_yes)
        h *= p_yes
        no = np.log1p(-p_yes)
        no *= 1 - p_yes
        h += no
        h -= p @ self._question_entropy
        group = self._question_group
        h = h[:, group]  # [N, n + 1]: members of a group share their group's exact value
        h[:, self._unaskable_or_padding] = np.inf
        h[rows, present_idx] = np.inf
        h[rows, denied_idx] = np.inf
        best = h.argmin(axis=1)
        first = h[rows[:, 0], best]
        h[rows, self._group_members[group[best]]] = np.inf  # the best group out: the runner-up
        second = h.min(axis=1)
        found = first != np.inf  # (a NaN, from probabilities that do not sum to 1, is found)
        question = np.where(found, best, -1)
        with np.errstate(invalid="ignore"):  # inf - inf: nothing left to ask
            near = found & (second - first <= _TIE_TOLERANCE)
        for i in np.flatnonzero(near).tolist():
            question[i] = self._next_position(p[i], [*present[i], *denied[i]])
        return question

    # -- out of pattern ---------------------------------------------------------------------
    def pattern_score(self, present: Sequence[Sequence[int]]) -> np.ndarray:
        """[N] how well each patient's symptoms fit the likeliest disease pattern: the largest,
        over diseases, mean log-share of the given symptoms in the disease's training patterns
        (0: every given symptom in all of them; an empty list scores 0)."""
        if len(present) == 1:  # one patient: a gather and a sum, not a [1, n] x [n, classes]
            distinct = sorted(set(present[0]))
            if not distinct:
                return np.zeros(1)
            sums = np.add.reduce(self._pattern_table[distinct], axis=0)
            return np.array([np.maximum.reduce(sums) / len(distinct)])
        return _pattern_scores(self._pattern_table, _padded(present, len(self._ids)))

    @property
    def out_of_pattern_threshold(self) -> float | None:
        """The pattern score below which a patient is out of pattern (None: not calibrated,
        as for models saved before it was)."""
        table = self.metadata.get(OUT_OF_PATTERN)
        if table is None:
            return None
        try:
            threshold = float(table["threshold"])
        except (KeyError, TypeError, ValueError) as e:
            raise SymptomDxError(f"{OUT_OF_PATTERN} in metadata.json is malformed: {e!r}") from None
        if not np.isfinite(threshold):
            raise SymptomDxError(f"{OUT_OF_PATTERN} threshold in metadata.json is {threshold}")
        return threshold

    def out_of_pattern(self, present: Sequence[Sequence[int]]) -> np.ndarray:
        """[N] bool: True where the symptoms fit no disease's training patterns (the pattern
        score is below the calibrated threshold), so no ranking of them deserves confidence.
        All False when the model has no threshold."""
        threshold = self.out_of_pattern_threshold
        if threshold is None:
            return np.zeros(len(present), dtype=bool)
        return self.pattern_score(present) < threshold - _SCORE_TOLERANCE

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
                c: {ids[j]: round(float(f), _PROFILE_DECIMALS) for j, f in enumerate(row) if f > 0}
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
            model = cls(
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
        _ = model.out_of_pattern_threshold  # a malformed threshold fails here, not in a request
        return model


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


def out_of_pattern_calibration(
    X: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    quantile: float = OUT_OF_PATTERN_QUANTILE,
    k: int = OUT_OF_PATTERN_VIGNETTE_SIZE,
    folds: int = 5,
    per_pattern: int | None = None,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The ``OUT_OF_PATTERN`` table of metadata.json: the pattern-score threshold that flags at
    most ``quantile`` of k-symptom vignettes of patterns the profiles did not see.

    The training patterns themselves give the held-out ones: each disease's distinct patterns
    are dealt into ``folds`` folds, and each fold's patterns (of diseases with patterns in the
    other folds) are scored under the profiles of the other folds, ``per_pattern`` vignettes
    each (the evaluation's default). Only profiles are refitted: the score uses no estimator.
    None when no disease has two patterns.
    """
    from symptom_dx.config import DEFAULTS  # where used: the server imports this module
    from symptom_dx.dataset import Dataset
    from symptom_dx.evaluation import vignettes

    per_pattern = DEFAULTS.vignettes_per_pattern if per_pattern is None else per_pattern
    distinct = Dataset(np.asarray(X), np.asarray(y).astype(str), "").distinct()
    rng = np.random.default_rng(seed)
    fold = np.empty(len(distinct), dtype=np.intp)
    for label in sorted(set(distinct.y)):
        idx = np.flatnonzero(distinct.y == label)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    scores = []
    for f in range(folds):
        rest = fold != f
        held = ~rest & np.isin(distinct.y, distinct.y[rest])
        if not held.any():
            continue
        table = _pattern_table(disease_profiles(distinct.X[rest], distinct.y[rest], classes))
        Xv, _ = vignettes(Dataset(distinct.X[held], distinct.y[held], ""), k, per_pattern, seed + f)
        scores.append(
            _pattern_scores(table, _padded([np.flatnonzero(r) for r in Xv], distinct.X.shape[1]))
        )
    if not scores:  # every disease has a single pattern: nothing to hold out
        return None
    calibration = np.concatenate(scores)
    # the largest threshold flagging at most `quantile` of them ("lower": one of the scores)
    threshold = float(np.quantile(calibration, quantile, method="lower"))
    return {
        "threshold": threshold,
        "quantile": quantile,
        "vignette_size": k,
        "folds": folds,
        "vignettes": len(calibration),
        "flagged": round(float((calibration < threshold - _SCORE_TOLERANCE).mean()), 6),
    }


def _pattern_table(profiles: np.ndarray) -> np.ndarray:
    """[n + 1, n_classes] log of the profile shares as metadata.json stores them (clipped), and
    a row of 0 for the padding position n."""
    stored = np.array([[round(float(f), _PROFILE_DECIMALS) for f in row] for row in profiles])
    table = np.log(np.clip(stored, _PROFILE_EPS, 1 - _PROFILE_EPS)).T
    return np.vstack([table, np.zeros((1, len(profiles)))])


def _pattern_scores(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pattern scores of ``_padded`` patients under ``table`` ([n + 1, n_classes] log-shares,
    row n 0): each disease's mean over the distinct given symptoms, the best disease's."""
    X = np.zeros((len(idx), len(table)))
    X[np.arange(len(idx))[:, None], idx] = 1  # a repeated symptom counts once
    X[:, -1] = 0
    counts = X.sum(axis=1)
    best = (X @ table).max(axis=1)
    return np.divide(best, counts, out=np.zeros_like(best), where=counts > 0)


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


def _padded(lists: Sequence[Sequence[int]], fill: int) -> np.ndarray:
    """Lists of positions -> [N, longest] int array, each row's positions in the order given
    and then ``fill``."""
    lengths = np.fromiter(map(len, lists), dtype=np.intp, count=len(lists))
    out = np.full((len(lists), int(lengths.max(initial=0))), fill, dtype=np.intp)
    out[np.arange(out.shape[1]) < lengths[:, None]] = np.fromiter(
        chain.from_iterable(lists), dtype=np.intp, count=int(lengths.sum())
    )
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x log x, with 0 log 0 = 0."""
    return x * np.log(x, out=np.zeros_like(x), where=x > 0)
