"""The forwarder's suspicions as the function reads them: each suspected node is marked, even
when its entry cannot be read (a doubtful node should not receive an IP)."""

from __future__ import annotations

import json

from floating_ip import translate
from floating_ip.core.model import Node, Suspicion


def test_entries_become_suspicions_on_their_nodes() -> None:
    data = {
        "n1": json.dumps({"probe": "tcp", "since": "2026-01-31T12:00:00Z", "detail": "2 refused"}),
        "n3": "{garbled",
    }
    suspected = translate.suspicions(data)
    assert suspected == {
        "n1": Suspicion("tcp", "2026-01-31T12:00:00Z", "2 refused"),
        "n3": Suspicion("unknown", "an unknown time", ""),
    }
    nodes = translate.with_suspicions([Node("n1"), Node("n2")], suspected)
    assert [n.suspicion for n in nodes] == [suspected["n1"], None]


def test_no_configmap_data_suspects_nobody() -> None:
    assert translate.suspicions({}) == {}
