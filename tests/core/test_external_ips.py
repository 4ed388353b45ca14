"""spec.externalIPs: the user's entries are kept; ours are swapped make-before-break."""

from __future__ import annotations

import pytest

from floating_ip.core.external_ips import bridge, final, record, recorded_anchors

USER, OTHER_USER = "198.51.100.7", "198.51.100.8"
OLD, NEW = "10.10.0.1", "10.10.0.2"
OURS = frozenset({OLD, NEW})


@pytest.mark.parametrize(
    ("current", "anchor", "expected"),
    [
        pytest.param([], NEW, [NEW], id="first-anchor"),
        pytest.param([USER], NEW, [USER, NEW], id="user-entry-kept"),
        pytest.param([USER, OLD, OTHER_USER], NEW, [USER, OTHER_USER, NEW], id="old-dropped"),
        pytest.param([NEW, USER], NEW, [NEW, USER], id="present-anchor-keeps-its-place"),
        pytest.param([USER, OLD, NEW], NEW, [USER, NEW], id="after-bridge"),
        pytest.param([USER, OLD], None, [USER], id="no-holder-drops-ours-only"),
        pytest.param([USER, USER], None, [USER, USER], id="users-list-untouched"),
    ],
)
def test_final(current: list[str], anchor: str | None, expected: list[str]) -> None:
    assert final(tuple(current), OURS, anchor) == tuple(expected)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param([USER, OLD], [USER, OLD, NEW], id="new-added-old-kept"),
        pytest.param([USER, NEW], None, id="already-there"),
        pytest.param([], [NEW], id="nothing-yet"),
    ],
)
def test_bridge(current: list[str], expected: list[str] | None) -> None:
    bridged = bridge(tuple(current), NEW)
    assert (list(bridged) if bridged is not None else None) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, set(), id="absent"),
        pytest.param("", set(), id="empty"),
        pytest.param(OLD, {OLD}, id="one"),
        pytest.param(f"{OLD}, {NEW}", {OLD, NEW}, id="two-during-a-move"),
    ],
)
def test_recorded_anchors(value: str | None, expected: set[str]) -> None:
    assert recorded_anchors(value) == expected


def test_record_round_trips_and_removes_when_empty() -> None:
    assert record([OLD, NEW, OLD]) == f"{OLD},{NEW}"
    assert recorded_anchors(record([OLD, NEW])) == {OLD, NEW}
    assert record([]) is None
