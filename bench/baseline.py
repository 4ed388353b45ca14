"""The code before the cold-path work (issue 14), exported from git, so a benchmark can run
old and new side by side in one run, on the same machine and the same bed."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from bench.machine import REPO

BASELINE_COMMIT = "a675f1d"
"""The last commit before the lean zip, the transport without API classes, the paged reads,
the leading-edge forwarder and the faster action polling."""


def export(target: Path, *paths: str, commit: str = BASELINE_COMMIT) -> Path:
    """``paths`` of ``commit`` (the baseline by default), written under ``target`` (which is
    returned). A path the commit does not have (a folder added since) is left out."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", commit, *paths],
        cwd=REPO,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, *listed],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target
