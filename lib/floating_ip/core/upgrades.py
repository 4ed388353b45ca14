"""Node-pool upgrades: move an IP once, onto a node that stays.

A DOKS node-pool upgrade is a surge: nodes of the new Kubernetes version join first, then the
old ones are cordoned and drained one by one. An IP leaving the first old node for the node
the rendezvous order prefers may land on another old node, and move again when that one is
drained: once per old node. So when an IP must move, fit nodes of the newest kubelet version
come first (the rendezvous order still decides among them): it lands on a node that stays.
While every node runs the same version (no upgrade), the order is the rendezvous order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence


@functools.lru_cache(maxsize=256)
def version_key(text: str | None) -> tuple[int, ...]:
    """``v1.31.1`` (or ``v1.31.1-do.0``, ``v1.31.1+abc``) as ``(1, 31, 1)``; unknown: ``()``,
    which sorts before every version."""
    if not text:
        return ()
    core = re.split(r"[-+]", text.strip().removeprefix("v"), maxsplit=1)[0]
    parts = core.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else ()


def newest_first(names: Sequence[str], versions: Mapping[str, str | None]) -> tuple[str, ...]:
    """``names`` (in preference order) with the newest kubelet version first; a stable sort,
    so the preference order stays within one version."""
    return tuple(sorted(names, key=lambda name: version_key(versions.get(name)), reverse=True))
