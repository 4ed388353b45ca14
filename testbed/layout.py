"""Where each shipped piece's code lives in this repository, for processes the bed starts.

The Makefile's SOURCE_ROOTS puts the same folders on the venv's import path; a process started
with ``python -S`` (the official image's standard-library-only interpreter) gets them from
here instead.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"
"""The function's package, ``floating_ip``."""
IN_CLUSTER = REPO / "in-cluster"
"""The forwarder, the annotator and the package they share with the function (a kustomize
Component, and the Helm chart's ``files/code``)."""
FUNCTION_PYTHONPATH = os.pathsep.join([str(LIB), str(IN_CLUSTER)])
"""The function's zip holds ``floating_ip`` and ``floating_ip_common`` side by side."""
