"""The replicas' observations: their encoding, and when another replica's entry is fresh
(timed on this replica's clock from when it changed, never the writer's clock)."""

from __future__ import annotations

import json

from floating_ip_forwarder.dead_nodes.observations import PeerBook, decode, encode
from floating_ip_forwarder.dead_nodes.suspicion import Peer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def entry(node: str, *failing: str, at: str = "t0", cut_off: bool = False) -> str:
    return json.dumps({"node": node, "failing": list(failing), "cutOff": cut_off, "at": at})


def test_an_observation_reads_back_as_written() -> None:
    text = encode("n2", frozenset({"n3", "n1"}), False, 1_800_000_000.25)
    assert json.loads(text)["failing"] == ["n1", "n3"]
    assert json.loads(text)["at"] == "2027-01-15T08:00:00.250000Z"
    assert decode("replica-1", text) == Peer("replica-1", "n2", frozenset({"n1", "n3"}), False)


def test_unreadable_entries_are_no_observation() -> None:
    for text in ("{", "[]", '"x"', json.dumps({"failing": "n1"}), json.dumps({"failing": [1]})):
        assert decode("replica-1", text) is None, text
    assert decode("r", json.dumps({"node": "", "failing": []})) == Peer("r", None, frozenset())


def test_what_was_there_at_the_first_list_is_old_news() -> None:
    clock = Clock()
    book = PeerBook("replica-0", clock)
    assert not book.saw({"replica-1": entry("n2", "n1"), "replica-0": entry("n3")})
    assert book.fresh(3.0) == (), "its writer may be long gone"
    clock.now += 1
    assert book.saw({"replica-1": entry("n2", "n1", at="t1")})
    assert book.fresh(3.0) == (Peer("replica-1", "n2", frozenset({"n1"})),)
    clock.now += 2.9
    assert len(book.fresh(3.0)) == 1
    clock.now += 0.1
    assert book.fresh(3.0) == (), "not refreshed for CONFIRM_WAIT: stale"


def test_its_own_entry_and_unchanged_entries_are_no_news() -> None:
    clock = Clock()
    book = PeerBook("replica-0", clock)
    book.saw({})
    assert book.saw({"replica-1": entry("n2")}), "a new replica after the first list"
    assert not book.saw({"replica-1": entry("n2"), "replica-0": entry("n3", "n1")})
    clock.now += 700
    assert book.forgotten(600.0) == ["replica-1"]
    book.saw_removed(["replica-1"])
    assert book.forgotten(600.0) == []
