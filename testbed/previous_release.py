"""The previous release's code, from the repository's history, for the version-skew tests.

It is run as it shipped, in processes of its own whose import path holds only its folders, so
it never meets the current packages.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from testbed.layout import REPO

PREVIOUS_RELEASE = "29f1c5d029b03a9bf8c287b20da28d7947bac272"
"""Release 0.1.0's code: the last commit whose forwarder sends no schema version and no
Kubernetes token, and whose function holds a standing cluster credential (``KUBE_TOKEN``)."""
SHIPPED_FOLDERS = ("lib", "in-cluster")


class HistoryMissing(RuntimeError):
    """The clone lacks the previous release: the tests cannot run what they must compare."""


@dataclass(frozen=True)
class PreviousRelease:
    root: Path
    """Where ``lib`` and ``in-cluster`` of the previous release were written."""

    @property
    def function_pythonpath(self) -> str:
        """The function's zip held ``floating_ip`` and ``floating_ip_common`` side by side."""
        return os.pathsep.join([str(self.root / "lib"), str(self.root / "in-cluster")])

    @property
    def in_cluster(self) -> Path:
        """The forwarder's working directory: its image's ``/app``."""
        return self.root / "in-cluster"

    def check_imported_from_here(self, env: dict[str, str], *modules: str) -> None:
        """Fail unless a process started with ``env`` (in ``root``) imports ``modules`` from
        this copy: the venv also puts the current packages on the import path."""
        code = (
            "import importlib, sys\n"
            "for m in sys.argv[1:]: print(importlib.import_module(m).__file__)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, *modules],
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        files = done.stdout.split()
        strays = [f for f in files if not Path(f).is_relative_to(self.root)]
        assert len(files) == len(modules) and not strays, f"not the previous release's: {strays}"


def extract(destination: Path, repository: Path = REPO) -> PreviousRelease:
    """``lib`` and ``in-cluster`` as they were at ``PREVIOUS_RELEASE``, written under
    ``destination``. Raises ``HistoryMissing`` naming the fix when the commit is not in the
    clone (a shallow one): the skew tests must fail then, not pass without running."""
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", PREVIOUS_RELEASE, *SHIPPED_FOLDERS],
            cwd=repository,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        said = getattr(error, "stderr", b"") or b""
        raise HistoryMissing(
            f"the previous release ({PREVIOUS_RELEASE[:7]}) is not in this clone's history, "
            "so the version-skew tests cannot run it: fetch the whole history "
            f"(git fetch --unshallow, or fetch-depth: 0 in CI). git said: "
            f"{said.decode(errors='replace').strip() or error}"
        ) from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return PreviousRelease(destination)
