"""The NoFitNode sentence names each node's reasons, bounded in length."""

from __future__ import annotations

import pytest

from floating_ip.core.model import NodeVerdict, Unfit
from floating_ip.core.status import MAX_NAMED_NODES, sentence, status_text, unfit_summary

NOT_READY = (Unfit.NOT_READY,)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        pytest.param((), "the cluster has no nodes", id="no-nodes"),
        pytest.param(
            (NodeVerdict("n1", (Unfit.NOT_READY, Unfit.CORDONED)),),
            "n1: NotReady, Cordoned",
            id="one-node-two-reasons",
        ),
        pytest.param(
            (NodeVerdict("n1", NOT_READY), NodeVerdict("n2", (Unfit.NO_READY_ENDPOINT,))),
            "n1: NotReady; n2: NoReadyEndpoint",
            id="each-node-named",
        ),
        pytest.param(
            (NodeVerdict("n1", ()), NodeVerdict("n2", (Unfit.TAINTED,))),
            "n2: Tainted",
            id="fit-nodes-not-listed",
        ),
        pytest.param(
            (
                *(NodeVerdict(f"n{i}", NOT_READY) for i in range(1, 8)),
                NodeVerdict("n8", (Unfit.CORDONED,)),
            ),
            "n1: NotReady; n2: NotReady; n3: NotReady; n4: NotReady; n5: NotReady; "
            "3 more nodes: 2 NotReady, 1 Cordoned",
            id="past-the-limit-counted",
        ),
        pytest.param(
            (
                *(NodeVerdict(f"n{i}", NOT_READY) for i in range(1, 6)),
                NodeVerdict("n6", (Unfit.TAINTED,)),
            ),
            "n1: NotReady; n2: NotReady; n3: NotReady; n4: NotReady; n5: NotReady; "
            "1 more node: 1 Tainted",
            id="one-more-node",
        ),
        pytest.param(
            (
                *(NodeVerdict(f"n{i}", NOT_READY) for i in range(1, 6)),
                NodeVerdict("n6", (Unfit.TAINTED,)),
                NodeVerdict("n7", (Unfit.CORDONED,)),
            ),
            "n1: NotReady; n2: NotReady; n3: NotReady; n4: NotReady; n5: NotReady; "
            "2 more nodes: 1 Cordoned, 1 Tainted",
            id="two-more-nodes-equal-counts-by-name",
        ),
    ],
)
def test_unfit_summary(verdicts: tuple[NodeVerdict, ...], expected: str) -> None:
    assert unfit_summary(verdicts) == expected


def test_the_summary_length_does_not_grow_with_the_cluster() -> None:
    def many(count: int) -> str:
        return unfit_summary(tuple(NodeVerdict(f"node-{i:04}", NOT_READY) for i in range(count)))

    assert len(many(10_000)) - len(many(MAX_NAMED_NODES + 1)) < 10


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("node n1 is unreachable", "Node n1 is unreachable.", id="capitalised-stop"),
        pytest.param("Reserved IP kept.", "Reserved IP kept.", id="one-stop-only"),
        pytest.param("  spaced  ", "Spaced.", id="trimmed"),
    ],
)
def test_a_message_becomes_one_sentence(message: str, expected: str) -> None:
    assert sentence(message) == expected


def test_a_status_is_its_sentences_in_a_row() -> None:
    assert status_text(["reserved IP kept", "firewall annotation ignored."]) == (
        "Reserved IP kept. Firewall annotation ignored."
    )
