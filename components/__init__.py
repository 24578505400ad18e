"""KFP v2 components: thin adapters over ``symptom_dx.steps``.

Every component runs from the project's components image (``IMAGE``, built by
``components/Dockerfile``), which already holds ``symptom_dx`` and its pinned dependencies:
no pip step is compiled in, so pods need no PyPI.
"""

import os

DEFAULT_IMAGE = "ghcr.io/symptom-dx/components:0.1.0"
# Your registry's copy: `python pipelines/compile.py --image REGISTRY/components:TAG out.yaml`.
IMAGE = os.environ.get("SYMPTOM_DX_COMPONENTS_IMAGE", DEFAULT_IMAGE)
