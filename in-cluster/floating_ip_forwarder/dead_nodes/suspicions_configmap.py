"""The suspected nodes as cluster state: one ConfigMap the leader owns and the function reads.

The function stays level-triggered: whatever runs it (an event, a resync, a new leader's
first resync) it reads this object and never puts an IP back on a suspected node. One key
per suspected node (its name), each a small JSON object; an empty ConfigMap suspects none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from floating_ip_common.kube_client import ApiError, KubeClient
from floating_ip_forwarder.dead_nodes.suspicion import Probe, Suspect

log = logging.getLogger(__name__)


def wall_text(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode(suspects: Iterable[Suspect], wall_offset: float) -> dict[str, str]:
    """The ConfigMap's ``data``; ``wall_offset``: wall clock minus the suspects' clock."""
    return {
        s.node: json.dumps(
            {"probe": s.probe.value, "since": wall_text(s.since + wall_offset), "detail": s.detail},
            sort_keys=True,
        )
        for s in suspects
    }


def decode(data: dict[str, Any], wall_offset: float) -> list[Suspect]:
    """Suspects from a ConfigMap's ``data`` (unreadable entries are skipped)."""
    found = []
    for node, text in sorted(data.items()):
        try:
            entry = json.loads(text)
            since = datetime.strptime(entry["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            found.append(
                Suspect(
                    node,
                    Probe(entry["probe"]),
                    since.timestamp() - wall_offset,
                    str(entry.get("detail", "")),
                )
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable suspicion", extra={"node": node})
    return found


class Board:
    """Reads and replaces the ConfigMap (only the leader writes it)."""

    def __init__(self, client: KubeClient, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.path = f"/api/v1/namespaces/{namespace}/configmaps"

    def read(self) -> dict[str, Any]:
        """The ConfigMap's data; empty when it does not exist."""
        conn = self.client.connection()
        try:
            found = conn.request("GET", f"{self.path}/{self.name}")
        except ApiError as error:
            if error.status == 404:
                return {}
            raise
        finally:
            conn.close()
        data = found.get("data")
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, str]) -> None:
        """Replace the whole ConfigMap (create it the first time)."""
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/part-of": "doks-floating-ip"},
            },
            "data": data,
        }
        conn = self.client.connection()
        try:
            try:
                conn.request("PUT", f"{self.path}/{self.name}", body)
            except ApiError as error:
                if error.status != 404:
                    raise
                conn.request("POST", self.path, body)
        finally:
            conn.close()
