"""Keep the server process small and quick to start.

Two heavy imports that a predictor never uses are kept out of ``python -m serving``:

- ``pyarrow`` (~35 MB): pandas imports it when installed, and KServe imports pandas; pandas
  treats a blocked import as "not installed".
- the Kubernetes client (~30 MB, 0.3 s): ``import kserve`` pulls it in for ``KServeClient``,
  the client that manages InferenceServices, which a model server never calls. A stand-in
  module without it takes its place.

Call ``trim_imports()`` before anything imports pandas or kserve; the process is then
about 200 MB resident instead of 280 MB.
"""

from __future__ import annotations

import sys
import types


def trim_imports() -> None:
    sys.modules.setdefault("pyarrow", None)  # type: ignore[arg-type]
    if "kserve" not in sys.modules:
        stub = types.ModuleType("kserve.api.kserve_client")
        stub.KServeClient = None  # type: ignore[attr-defined]
        sys.modules.setdefault("kserve.api.kserve_client", stub)
