"""symptom_dx: the domain of symptom-based disease prediction.

One package holds what every part of the system shares: the symptom vocabulary and its
normaliser, the disease names, the dataset contract, feature building and the model wrapper.
Pipeline components, the model server and the UI are thin adapters over it.
"""

from importlib.metadata import version

__version__ = version("symptom-dx")  # pyproject.toml's, the one place it is written
