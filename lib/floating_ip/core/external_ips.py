"""The Service's ``spec.externalIPs``: the user's own entries plus the holder's anchor IP.

An entry is "ours" when it is an anchor IP this project recorded on the Service
(``contract.ANCHOR_IP``, a comma-separated list while a move is under way) or the anchor IP of
any Node or Pod in the observation. Every other entry is the user's and is never removed or
reordered.

A move is make-before-break: first the new anchor is added next to the old one (``bridge``),
then the IP is assigned, then the old anchor is dropped (``final``). Between the first and
the last step the recorded annotation lists both, so a crash in between still lets a later
run recognise the new anchor as ours even if its Node has gone.
"""

from __future__ import annotations

from collections.abc import Iterable


def recorded_anchors(value: str | None) -> frozenset[str]:
    """The anchor IPs our ``contract.ANCHOR_IP`` annotation lists."""
    if not value:
        return frozenset()
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def record(anchors: Iterable[str]) -> str | None:
    """The ``contract.ANCHOR_IP`` value for these anchors (``None``: remove it)."""
    listed = list(dict.fromkeys(anchors))
    return ",".join(listed) if listed else None


def final(current: tuple[str, ...], ours: frozenset[str], anchor: str | None) -> tuple[str, ...]:
    """The user's entries (kept in place) plus ``anchor`` (kept in place or appended)."""
    kept = tuple(ip for ip in current if ip not in ours or ip == anchor)
    if anchor is None or anchor in kept:
        return kept
    return (*kept, anchor)


def bridge(current: tuple[str, ...], anchor: str) -> tuple[str, ...] | None:
    """Before a move: everything there now plus the new anchor (``None``: already there)."""
    return None if anchor in current else (*current, anchor)


def ours_in(external_ips: tuple[str, ...], ours: frozenset[str]) -> tuple[str, ...]:
    return tuple(ip for ip in external_ips if ip in ours)
