"""A stock-style KServe sklearn predictor: the comparison point of ``make bench``.

It does what KServe's sklearnserver does with ``PREDICT_PROBA=true``: load the one
``*.joblib`` in the model folder, ``get_predict_input`` -> ``predict_proba`` on the
[N, 132] vector -> ``get_predict_response``, behind KServe's default stack (FastAPI request
and response models, access log, timing and latency log lines). It runs in our
``serving.server.ModelServer`` for the loopback address (and so with its error answers and
limits, which cost nothing measurable) with the fast path off. The sklearnserver package
itself is not on PyPI; it lives in KServe's repository and image.

    python bench/stock_server.py --model_dir DIR --http_port P --grpc_port Q
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
from kserve import Model, model_server
from kserve.errors import InferenceError, ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response

from pipelines.local_stack.services import LOOPBACK
from serving.server import ModelServer
from symptom_dx.contract import MODEL_NAME

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


class StockSKLearnModel(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir

    def load(self) -> bool:
        files = [p for p in Path(self.model_dir).iterdir() if p.name.endswith(MODEL_EXTENSIONS)]
        if len(files) != 1:
            raise ModelMissingError(self.model_dir)
        self._model = joblib.load(files[0])
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            instances = get_predict_input(payload)
            result = self._model.predict_proba(instances)
            return get_predict_response(payload, result, self.name)
        except Exception as e:
            raise InferenceError(str(e)) from e


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    parser.set_defaults(model_name=MODEL_NAME)
    args, _ = parser.parse_known_args()
    model = StockSKLearnModel(args.model_name, args.model_dir)
    model.load()
    ModelServer(
        bind_address=LOOPBACK,
        access_log=True,
        fast_path=False,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_latency_logging=args.enable_latency_logging,  # KServe's default: on
    ).start([model])


if __name__ == "__main__":
    main()
