"""The training configuration: every default of the pipeline, written once.

The run's own settings are written here (``RunConfig``); the candidates' hyperparameters
(``nb_alpha``, ...) are fields made from the candidate table, with its types and defaults
(``symptom_dx.candidates``). The pipeline's signature takes its defaults from ``DEFAULTS``
(KFP reads Python defaults at compile time), and tests and the benchmark train with the same
values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Any

from symptom_dx.candidates import ALGORITHMS, HYPERPARAMETERS


@dataclass(frozen=True)
class RunConfig:
    """What a training run is made of besides the candidates' hyperparameters, from the split
    to the gate.

    Attributes:
        algorithms: Comma-separated candidates (``symptom_dx.candidates``), by default all.
        dropout_samples: Partial-symptom copies made of each training pattern (0 = none).
        test_fraction: Share of each disease's distinct patterns held out for evaluation.
        split_seed: Seed of the pattern split.
        seed: Seed of augmentation, training and the evaluation's vignettes.
        gate_metric: Metric that picks the best candidate and gates promotion.
        min_improvement: How much the gate metric must beat the champion's by to promote.
        vignettes_per_pattern: Random k-symptom subsets drawn from each held-out pattern.
    """

    algorithms: str = ",".join(ALGORITHMS)
    dropout_samples: int = 30
    test_fraction: float = 0.2
    split_seed: int = 0
    seed: int = 0
    gate_metric: str = "k3_top1"
    min_improvement: float = 0.0
    vignettes_per_pattern: int = 20

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hyperparameter_values(self: RunConfig) -> dict[str, int | float]:
    """The candidates' hyperparameters by pipeline parameter name: ``{"nb_alpha": 0.1, ...}``."""
    return {name: getattr(self, name) for name in HYPERPARAMETERS}


# RunConfig and one field per hyperparameter of the candidate table: a candidate added there is
# a field here, with its type and default.
TrainingConfig = make_dataclass(
    "TrainingConfig",
    [(h.name, h.kind, field(default=h.default)) for h in HYPERPARAMETERS.values()],
    bases=(RunConfig,),
    namespace={"__module__": __name__, "hyperparameter_values": _hyperparameter_values},
    frozen=True,
)
TrainingConfig.__doc__ = """What a training run is made of: ``RunConfig``'s fields and the
candidates' hyperparameters (``symptom_dx.candidates.HYPERPARAMETERS``, where each is
described), one field each, named as the pipeline parameter."""

DEFAULTS = TrainingConfig()
