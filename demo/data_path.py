"""The demo's packets, where this machine can make them: the data-path bed
(``testbed.dataplane``) under the demo's cluster.

Each node is a network namespace running a real kube-proxy, each pod a namespace whose
server answers with the pod's name, and the provider's edge delivers a reserved IP to the
anchor of the droplet the DigitalOcean imitation says holds it. Across a move, a client
beyond the edge sends requests to the reserved IP (``testbed.dataplane.traffic``); the
narration says which node's pod answered before and after, and how long it went unanswered.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from demo.errors import DemoError
from demo.model import Droplet
from testbed.dataplane import kube_proxy, namespaces
from testbed.dataplane.bed import DataPathBed
from testbed.dataplane.traffic import PROTOCOLS, MoveSeen, Sample, Traffic, seen_around
from testbed.doks import DoksWorld
from testbed.processes import wait_until

MODE = "nftables"
ANSWER_TIMEOUT = 30.0
"""Seconds the client may wait for an answer: before a move, from the pod serving now; after
it, from another pod (kube-proxy programs a change within a few of its 1 s syncs)."""
SETTLE = 0.3
"""Seconds of answers from the new pod recorded after its first, so that a late answer of
the old one would still be counted."""


@dataclass(frozen=True)
class Probe:
    """Where the client sends its requests across a step's move."""

    ip: str
    port: int
    protocols: tuple[str, ...] = PROTOCOLS

    def __str__(self) -> str:
        return f"{self.ip}:{self.port} ({', '.join(self.protocols)})"


@dataclass(frozen=True)
class ClientSaw:
    """What the client saw of one move."""

    old: str
    """The pod that answered before the move, and its node."""
    old_node: str
    new: str
    """The pod that answered after it, and its node."""
    new_node: str
    seen: MoveSeen


def kube_proxy_or_why() -> Path | str:
    """kube-proxy's binary (built on first use), or why the data path cannot run here."""
    reason = namespaces.unavailable()
    if reason is not None:
        return reason
    try:
        return kube_proxy.binary()
    except (OSError, subprocess.CalledProcessError) as error:
        said = getattr(error, "stderr", None) or str(error)
        return f"kube-proxy could not be built: {said.strip().splitlines()[-1]}"


class DataPath:
    """The bed's nodes for the world's droplets, following ``ips``; stopped by :meth:`close`."""

    def __init__(self, world: DoksWorld, ips: Sequence[str], workdir: Path, binary: Path) -> None:
        self._workdir = workdir
        self._short = {d.node: short for short, d in world.droplets.items()}
        self.node_of: dict[str, str] = {}
        """Every pod the demo started, to the name of its node."""
        self._traffic: Traffic | None = None
        self.bed = DataPathBed(world, MODE, workdir, binary)
        try:
            for short in world.droplets:
                self.bed.add_node(short)
            for ip in ips:
                self.bed.follow(ip)
        except BaseException:
            self.bed.close()
            raise

    # --- what the demo's kubelet and power cut do to packets ------------------------------

    def add_pod(
        self, namespace: str, name: str, droplet: Droplet, ip: str, ports: Sequence[int]
    ) -> None:
        """The pod's namespace on its node, its server answering on ``ports``."""
        self.bed.wire_pod(namespace, name, self._short[droplet.node], ip, ports)
        self.node_of[name] = droplet.node

    def remove_pod(self, name: str) -> None:
        """The pod's server ends and its namespace goes."""
        self.bed.unwire_pod(name)

    def power_off(self, droplet: Droplet) -> None:
        """Nothing reaches the droplet any more, nor leaves it."""
        self.bed.network.power(self.bed.node(self._short[droplet.node]), on=False)

    # --- the client, across a move -------------------------------------------------------

    def before(self, probe: Probe) -> str:
        """Start the client towards ``probe``; the pod answering it now."""
        self._stop_client()
        self._traffic = Traffic(
            self.bed.network.client, probe.ip, probe.port, self._workdir, probe.protocols
        )
        traffic = self._traffic
        try:
            wait_until(
                lambda: answering(traffic.samples(), probe.protocols) is not None,
                timeout=ANSWER_TIMEOUT,
                what=f"an answer at {probe}",
            )
        except TimeoutError:
            raise DemoError(
                f"the client got no answer at {probe} within {ANSWER_TIMEOUT:g} s before the move"
            ) from None
        return str(answering(traffic.samples(), probe.protocols))

    def after(self, probe: Probe, old: str) -> ClientSaw | None:
        """Once another pod than ``old`` answers ``probe`` (``None``: none did in time), what
        the client saw between the two; the client then stops."""
        traffic = self._traffic
        if traffic is None:
            raise DemoError("the client was not started before the move")
        new: list[str] = []

        def settled() -> bool:
            samples = traffic.samples()
            now = answering(samples, probe.protocols)
            if now is None or now == old:
                return False
            firsts = [
                min(s.sent for s in samples if s.protocol == p and s.outcome.pod == now)
                for p in probe.protocols
            ]
            new[:] = [now]
            return time.monotonic() - max(firsts) > SETTLE

        try:
            wait_until(settled, timeout=ANSWER_TIMEOUT, what="another pod answers")
        except TimeoutError:
            return None
        finally:
            samples = traffic.samples()
            self._stop_client()
        seen = seen_around(samples, old, new[0], probe.protocols)
        return ClientSaw(old, self.node_of[old], new[0], self.node_of[new[0]], seen)

    def _stop_client(self) -> None:
        if self._traffic is not None:
            self._traffic.stop()
            self._traffic = None

    def close(self) -> None:
        self._stop_client()
        self.bed.close()


def answering(samples: Sequence[Sample], protocols: Sequence[str]) -> str | None:
    """The pod that answered the latest answered request of every protocol, if one pod did."""
    latest = set()
    for protocol in protocols:
        answered = [s for s in samples if s.protocol == protocol and s.outcome.pod]
        if not answered:
            return None
        latest.add(max(answered, key=lambda s: s.sent).outcome.pod)
    return latest.pop() if len(latest) == 1 else None
