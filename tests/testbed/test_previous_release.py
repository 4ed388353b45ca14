"""The previous release's code comes from the history, or the skew tests fail saying why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testbed.layout import REPO
from testbed.previous_release import PREVIOUS_RELEASE, HistoryMissing, extract


def test_the_previous_release_is_extracted_as_it_was(tmp_path: Path) -> None:
    release = extract(tmp_path)
    handler = release.root / "lib" / "floating_ip" / "handler.py"
    shipped = subprocess.run(
        ["git", "show", f"{PREVIOUS_RELEASE}:lib/floating_ip/handler.py"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    assert handler.read_bytes() == shipped
    assert (release.in_cluster / "floating_ip_forwarder" / "forwarding" / "sender.py").is_file()


def test_a_shallow_clone_fails_naming_the_fix(tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth=1", REPO.as_uri(), str(shallow)],
        capture_output=True,
        check=True,
    )
    with pytest.raises(HistoryMissing, match="fetch the whole history") as missing:
        extract(tmp_path / "out", repository=shallow)
    assert PREVIOUS_RELEASE[:7] in str(missing.value)
