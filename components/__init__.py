"""KFP v2 components: thin adapters over ``symptom_dx.steps``.

Every component runs from the project's components image (``IMAGE``, the ``components`` target
of the Dockerfile), which already holds ``symptom_dx`` and its pinned dependencies: no pip step
is compiled in, so pods need no PyPI. ``python -m pipelines.compile`` sets the image the
manifests deploy (manifests/base/kustomization.yaml) through SYMPTOM_DX_COMPONENTS_IMAGE.
"""

import os

from symptom_dx import __version__

DEFAULT_IMAGE = f"ghcr.io/symptom-dx/components:{__version__}"
IMAGE = os.environ.get("SYMPTOM_DX_COMPONENTS_IMAGE", DEFAULT_IMAGE)
