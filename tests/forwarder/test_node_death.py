"""Runs ``node_death.py`` inside a private network namespace where the bed's pod addresses
are real (``testbed.netns``): every process of those tests (control plane, DigitalOcean
imitation, function, forwarder, pods) lives and dies in there, and no packet leaves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed import netns

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.mark.bed
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_node_death_in_a_private_network(tmp_path: Path) -> None:
    why = netns.unavailable()
    if why is not None:
        pytest.skip(why)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "node_death.py"),
        "-p",
        "no:cacheprovider",
        "-q",
        "-s",
        f"--basetemp={tmp_path / 'inside'}",
    ]
    done = subprocess.run(
        netns.wrap(argv), cwd=REPO, capture_output=True, text=True, timeout=880, check=False
    )
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
