"""Each Dockerfile's build context, as its .dockerignore leaves it: every file a COPY names
is sent (a shared module added to a COPY line must be let through here too)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from testbed.layout import IN_CLUSTER


def sent(ignore: Path, path: str) -> bool:
    """Whether ``path`` survives ``ignore`` (only the ``*`` then ``!keep`` form used here)."""
    lines = [s.strip() for s in ignore.read_text().splitlines()]
    keep = [s[1:].rstrip("/") for s in lines if s.startswith("!")]
    return any(path == k or path.startswith(k + "/") for k in keep)


@pytest.mark.parametrize("part", ["event-forwarder", "annotator"])
def test_every_copied_file_is_in_the_build_context(part: str) -> None:
    dockerfile = IN_CLUSTER / f"{part}.Dockerfile"
    ignore = IN_CLUSTER / f"{part}.Dockerfile.dockerignore"
    assert ignore.read_text().splitlines()[2] == "*", "everything is left out but what is named"
    copied = [
        source.rstrip("/")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("COPY ")
        for source in shlex.split(line)[1:-1]
    ]
    assert copied
    for source in copied:
        assert (IN_CLUSTER / source).exists(), source
        assert sent(ignore, source), f"{ignore.name} leaves out {source}"
