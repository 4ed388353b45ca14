"""Placement: stickiness first, then a maximum matching that follows rendezvous preference."""

from __future__ import annotations

import itertools

import pytest

from floating_ip.core.placement import PlacementOutcome, Seat, place

KEEP, MOVE, LOCKED = PlacementOutcome.KEEP, PlacementOutcome.MOVE, PlacementOutcome.LOCKED
NO_FIT, NO_FREE = PlacementOutcome.NO_FIT_NODE, PlacementOutcome.NO_FREE_DROPLET
Expected = tuple[PlacementOutcome, str | None]


def seat(ip: str, fit: str, *, on: str | None = None, locked: bool = False) -> Seat:
    """``fit``: node letters in rendezvous order; node ``a`` is droplet 1, ``b`` 2..."""
    pairs = tuple((name, ord(name) - ord("a") + 1) for name in fit)
    return Seat(ip, ord(on) - ord("a") + 1 if on else None, locked, pairs)


@pytest.mark.parametrize(
    ("seats", "occupied", "expected"),
    [
        pytest.param([seat("A", "ab")], "", {"A": (MOVE, "a")}, id="first-choice"),
        pytest.param(
            [seat("A", "ab", on="b")], "b", {"A": (KEEP, "b")}, id="sticky-despite-preference"
        ),
        pytest.param([seat("A", "b", on="a")], "a", {"A": (MOVE, "b")}, id="holder-unfit-moves"),
        pytest.param([seat("A", "", on="a")], "a", {"A": (NO_FIT, None)}, id="no-fit-stays"),
        pytest.param(
            [seat("A", "b", on="a", locked=True)], "a", {"A": (LOCKED, None)}, id="locked-waits"
        ),
        pytest.param(
            [seat("A", "ab", on="a", locked=True)], "a", {"A": (KEEP, "a")}, id="locked-but-fit"
        ),
        pytest.param([seat("A", "ab")], "a", {"A": (MOVE, "b")}, id="busy-droplet-skipped"),
        pytest.param([seat("A", "a")], "a", {"A": (NO_FREE, None)}, id="only-fit-is-busy"),
        pytest.param(
            [seat("A", "ab"), seat("B", "a")],
            "",
            {"A": (MOVE, "b"), "B": (MOVE, "a")},
            id="augmenting-path-places-both",
        ),
        pytest.param(
            [seat("A", "ab"), seat("B", "ab"), seat("C", "ab")],
            "",
            {"A": (MOVE, "a"), "B": (MOVE, "b"), "C": (NO_FREE, None)},
            id="three-ips-two-droplets",
        ),
        pytest.param(
            [seat("A", "ab", on="a"), seat("B", "a")],
            "a",
            {"A": (KEEP, "a"), "B": (NO_FREE, None)},
            id="sticky-holder-never-displaced",
        ),
        pytest.param(
            [seat("A", "abc"), seat("B", "ab"), seat("C", "a")],
            "",
            {"A": (MOVE, "c"), "B": (MOVE, "b"), "C": (MOVE, "a")},
            id="chain-of-displacements",
        ),
    ],
)
def test_place(seats: list[Seat], occupied: str, expected: dict[str, Expected]) -> None:
    busy = frozenset(ord(name) - ord("a") + 1 for name in occupied)
    placed = {p.ip: (p.outcome, p.node_name) for p in place(seats, busy)}
    assert placed == expected


def test_place_keeps_seat_order_and_is_deterministic() -> None:
    seats = [seat("A", "ab"), seat("B", "ba"), seat("C", "c")]
    assert [p.ip for p in place(seats, frozenset())] == ["A", "B", "C"]
    assert place(seats, frozenset()) == place(list(seats), frozenset())


def most_placeable(fit: list[str]) -> int:
    """Brute force: the largest number of IPs that can sit on distinct droplets."""
    best = 0
    droplets = sorted({d for options in fit for d in options})
    for chosen in itertools.product(*[[*options, None] for options in fit]):
        placed = [d for d in chosen if d is not None]
        if len(placed) == len(set(placed)):
            best = max(best, len(placed))
    assert best <= len(droplets)
    return best


def test_matching_is_maximum_for_every_small_graph() -> None:
    """Every fit relation of 3 IPs over 3 droplets (512 of them), each order tried."""
    for edges in itertools.product([False, True], repeat=9):
        fit = ["".join("abc"[d] for d in range(3) if edges[i * 3 + d]) for i in range(3)]
        for preference in ({}, {0: -1}):  # as listed, and the first IP's order reversed
            ordered = [f[:: preference.get(i, 1)] for i, f in enumerate(fit)]
            placed = place([seat(f"ip{i}", f) for i, f in enumerate(ordered)], frozenset())
            moved = [p for p in placed if p.outcome is MOVE]
            assert len(moved) == most_placeable(fit), fit
            assert len({p.droplet_id for p in moved}) == len(moved)
