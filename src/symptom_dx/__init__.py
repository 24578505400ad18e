"""symptom_dx: the domain of symptom-based disease prediction.

One package holds what every part of the system shares: the symptom vocabulary and its
normaliser, the disease names, the dataset contract, feature building and the model wrapper.
Pipeline components, the model server and the UI are thin adapters over it.
"""

import os
from importlib.metadata import version

# MLflow 3 reports usage to its maintainers from every process that imports it (a thread that
# calls https://config.mlflow-telemetry.io at once): nothing of a health-data system calls out
# unless its operator says so (MLFLOW_DISABLE_TELEMETRY=false). Set before any of our modules
# imports MLflow; the processes they start (the local MLflow server) inherit it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = version("symptom-dx")  # pyproject.toml's, the one place it is written
