"""symptom_dx: the domain of symptom-based disease prediction.

One package holds what every part of the system shares: the symptom vocabulary and its
normaliser, the disease names, the dataset contract, feature building and the model wrapper.
Pipeline components, the model server and the UI are thin adapters over it.
"""

__version__ = "0.1.0"
