"""Where the suite runs unprivileged (GitHub's runner), the data-path tests run again as root
through passwordless sudo: named network namespaces, nft and kube-proxy need root. Run as
root, they have run directly already and this test has nothing to add."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.dataplane import namespaces
from tests.dataplane.conftest import skip_or_fail

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.mark.bed
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.geteuid() == 0, reason="root: the data-path tests ran directly")
def test_the_data_path_tests_pass_as_root(tmp_path: Path) -> None:
    if not namespaces.can_sudo():
        skip_or_fail("not root, and no passwordless sudo to become root")
    argv = [
        "sudo",
        "-n",
        "env",
        f"PATH={os.environ['PATH']}",
        # The binaries this user's make test built: root must not build its own.
        f"FLOATING_IP_CACHE={namespaces.build_cache()}",
        f"CI={os.environ.get('CI', '')}",
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "test_data_path.py"),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--basetemp={tmp_path / 'as-root'}",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=880, check=False)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
