"""TCP connect probes against real loopback listeners: answered, refused, and silent."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from floating_ip_forwarder.dead_nodes import prober
from testbed.processes import free_port


@pytest.fixture
def listening() -> Iterator[tuple[str, int]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()


@pytest.fixture
def silent() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full and never drained: new SYNs are dropped, so a
    connect gets no answer at all, like a node that lost power."""
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = server.getsockname()
    fillers = []
    for _ in range(8):  # connect until one gets no answer: the queue is then full
        filler = socket.socket()
        filler.settimeout(0.2)
        fillers.append(filler)
        try:
            filler.connect(address)
        except TimeoutError:
            break
    else:
        pytest.fail("the accept queue never filled up")
    try:
        yield address
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_an_answering_endpoint_passes(listening: tuple[str, int]) -> None:
    assert prober.probe([listening], timeout=1.0) == {listening: True}


def test_a_refused_endpoint_fails_at_once() -> None:
    closed = ("127.0.0.1", free_port())
    started = time.monotonic()
    assert prober.probe([closed], timeout=2.0) == {closed: False}
    assert time.monotonic() - started < 1.0


def test_a_silent_endpoint_fails_after_the_timeout(silent: tuple[str, int]) -> None:
    started = time.monotonic()
    assert prober.probe([silent], timeout=0.3) == {silent: False}
    assert 0.25 <= time.monotonic() - started < 1.5


def test_many_targets_in_one_round(listening: tuple[str, int], silent: tuple[str, int]) -> None:
    closed = ("127.0.0.1", free_port())
    targets = [listening, closed, silent] * 200  # duplicates collapse
    started = time.monotonic()
    assert prober.probe(targets, timeout=0.3) == {listening: True, closed: False, silent: False}
    assert time.monotonic() - started < 1.5, "one round costs about one timeout"


def test_more_targets_than_the_window_all_get_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prober, "WINDOW", 12)  # two targets' six attempts at a time
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(5)]
    try:
        answering = [s.getsockname() for s in servers]
        closed = [("127.0.0.1", free_port()) for _ in range(5)]
        found = prober.probe(answering + closed, timeout=1.0)
        assert found == {**dict.fromkeys(answering, True), **dict.fromkeys(closed, False)}
    finally:
        for server in servers:
            server.close()
