"""KFP v2 components: thin adapters over ``symptom_dx.steps``.

Every component runs from the project's components image (``IMAGE``, built by
``components/Dockerfile``), which already holds ``symptom_dx`` and its pinned dependencies:
no pip step is compiled in, so pods need no PyPI.
"""

IMAGE = "ghcr.io/symptom-dx/components:0.1.0"
