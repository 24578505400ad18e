"""The MLflow face of a model folder.

``mlflow.pyfunc.load_model("models:/disease-classifier@champion")`` loads the same
``model.joblib`` and ``metadata.json`` that KServe serves (the folder's ``MLmodel`` names this
module as its pyfunc loader).

``predict`` takes a DataFrame with the 132 symptom ids as columns (0/1) and returns the
top-ranked disease of each row, as the registered signature says.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symptom_dx.model import SymptomClassifier
from symptom_dx.vocabulary import vocabulary


def predict_labels(model: SymptomClassifier, frame: Any) -> np.ndarray:
    """The top-ranked disease per row of a DataFrame whose columns are symptom ids."""
    X = np.asarray(frame[list(vocabulary().ids)], dtype=np.float32)
    return np.asarray(model.classes, dtype=object)[model.predict_proba(X).argmax(axis=1)]


class PyFuncModel:
    """What MLflow's pyfunc loader returns."""

    def __init__(self, model: SymptomClassifier) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict | None = None) -> np.ndarray:
        return predict_labels(self.model, model_input)


def _load_pyfunc(path: str) -> PyFuncModel:
    """MLflow's hook (``loader_module``): ``path`` is the model folder itself."""
    return PyFuncModel(SymptomClassifier.load(path))
