"""The story: eight cluster changes, each with the state it must lead to.

Every change is made in the cluster only (as DOKS' controllers or a user would make it); the
forwarder notices it and calls the function, which moves the IP, patches the Service and
writes the firewall. Across the three moves of a claimed IP, where the demo has a data path,
a client sends requests to it (the step's ``probe``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from demo.conditions import (
    Check,
    all_of,
    anchor_of,
    closed,
    external_ips,
    gone,
    holder_anchor,
    ip_apart,
    ip_on,
    only_ips,
    opened,
    owns_ip_on,
)
from demo.data_path import Probe
from demo.model import Droplet, Opening, Snapshot, ip_list, name_of, port_list
from demo.narrator import Narrator
from demo.options import LEASE_STALE_AFTER
from demo.system import System
from floating_ip_common import contract
from testbed.kube import Port
from testbed.pods import NODE_LEASE_NAMESPACE

TRAEFIK = "traefik"
GITEA = "gitea-ssh"
WHOAMI = "whoami"
TRAEFIK_PORTS = (Port(80, name="web"), Port(443, name="websecure"), Port(443, "UDP", name="http3"))
GITEA_PORTS = (Port(22, name="ssh"),)
WHOAMI_PORTS = (Port(8000, name="http"),)
WEB = frozenset({Opening(80, "tcp"), Opening(443, "tcp"), Opening(443, "udp")})
SSH = frozenset({Opening(22, "tcp")})
HTTP = frozenset({Opening(8000, "tcp")})
CLUSTER = "blue"  # the colour of what the demo does in the cluster


@dataclass(frozen=True)
class Step:
    title: str
    prepare: Callable[[], None]
    """Untimed setting of the scene."""
    act: Callable[[], None]
    """The cluster change; the clock starts when it returns."""
    expect: Check
    outcome: Callable[[Snapshot], str]
    """What was reached, in one line."""
    summary: Callable[[Snapshot], str]
    """The step in a few words, for the final table."""
    probe: Probe | None = None
    """Where a client sends requests across the step's move, if the demo has a data path."""


def story(system: System, say: Narrator) -> list[Step]:
    a, b, c = system.droplets
    ip1, ip2 = system.ips
    ns = system.namespace
    kube = system.kube
    droplets = system.by_id()
    traefik, gitea = f"{ns}/{TRAEFIK}", f"{ns}/{GITEA}"

    def cluster(text: str) -> None:
        say.say("cluster", text, CLUSTER)

    def start_pod(name: str, droplet: Droplet, service: str) -> None:
        anchor = system.controllers.start_pod(ns, name, droplet, service)
        cluster(f"pod {name} on {droplet.node}: init container wrote anchor {anchor}; Ready")

    def create_service(name: str, ports: tuple[Port, ...]) -> None:
        # As the docs advise for externalIPs mode: the client's address reaches the pods.
        kube.create_service(
            ns, name, list(ports), service_type="NodePort", external_traffic_policy="Local"
        )
        listed = " ".join(f"{p.port}/{p.protocol.lower()}" for p in ports)
        cluster(f"service {ns}/{name} created ({listed}; NodePort, Local), not annotated yet")

    def annotate(name: str, ip: str | None) -> None:
        kube.annotate_service(ns, name, {contract.ADDRESS: ip})
        if ip is None:
            cluster(f"removed {contract.ADDRESS} from {ns}/{name}")
        else:
            cluster(f"annotated {ns}/{name} {contract.ADDRESS}={ip}")

    def where(ip: str, snapshot: Snapshot) -> str:
        return name_of(snapshot.ip(ip).droplet_id, droplets)

    def first_service() -> None:
        create_service(TRAEFIK, TRAEFIK_PORTS)
        start_pod("traefik-1", a, TRAEFIK)

    def move_pod() -> None:
        system.controllers.delete_pod(ns, "traefik-1", TRAEFIK)
        cluster(f"pod traefik-1 on {a.node} deleted (rolling update done): no endpoint there")

    def scale_out() -> None:
        start_pod("traefik-3", c, TRAEFIK)
        cluster(f"(a second replica, so that a fit node exists when {b.node} fails)")

    def fail_node() -> None:
        system.controllers.node_not_ready(b)
        cluster(f"node {b.node}: Ready=False, tainted not-ready; its pods are not evicted")

    def free_node_back() -> None:
        system.controllers.node_ready(b)
        cluster(f"node {b.node}: Ready=True again, taints lifted")
        start_pod("gitea-3", b, GITEA)
        cluster(
            f"(a droplet holds one reserved IP: {c.node} holds {ip1}, so {b.node} is where"
            f" {ip2} can go when {a.node} fails)"
        )
        say.say(
            "demo",
            f"the forwarder suspects a node whose kubelet Lease has not changed for"
            f" NODE_LEASE_STALE_AFTER, set to {LEASE_STALE_AFTER} here as a user sets it"
            " (default 20 s); this machine cannot reach the demo's pod addresses, so the"
            " forwarder runs with NODE_PROBES=off (TCP probes: ~2 s, see the README)",
        )

    def power_off() -> None:
        system.power_off(a)
        unreachable = " and no packet reaches it" if system.data_path else ""
        cluster(
            f"node {a.node} loses power: its kubelet stops renewing Lease"
            f" {NODE_LEASE_NAMESPACE}/{a.node}{unreachable}; Node and pods still look Ready"
            " (Kubernetes would mark it NotReady after 40-50 s)"
        )

    def second_service() -> None:
        create_service(GITEA, GITEA_PORTS)
        start_pod("gitea-1", c, GITEA)
        start_pod("gitea-2", a, GITEA)

    return [
        *life_cycle(system, say),
        Step(
            title=f"Traefik asks for {ip1}",
            prepare=first_service,
            act=lambda: annotate(TRAEFIK, ip1),
            expect=all_of(
                ip_on(ip1, a, droplets), external_ips(traefik, anchor_of(a)), opened(WEB)
            ),
            outcome=lambda s: (
                f"{ip1} on {where(ip1, s)}, externalIPs {ip_list((a.anchor,))},"
                f" firewall opens {port_list(WEB)}"
            ),
            summary=lambda s: f"traefik annotated → {ip1} on {where(ip1, s)}, ports open",
        ),
        Step(
            title=f"Traefik's pod moves from {a.node} to {b.node}",
            prepare=lambda: start_pod("traefik-2", b, TRAEFIK),
            act=move_pod,
            expect=all_of(ip_on(ip1, b, droplets), external_ips(traefik, anchor_of(b))),
            outcome=lambda s: (
                f"{ip1} followed to {where(ip1, s)}, externalIPs {ip_list((b.anchor,))}"
            ),
            summary=lambda s: f"pod moved → {ip1} followed to {where(ip1, s)}",
            probe=Probe(ip1, 443),
        ),
        Step(
            title=f"{b.node} goes NotReady",
            prepare=scale_out,
            act=fail_node,
            expect=all_of(ip_on(ip1, c, droplets), external_ips(traefik, anchor_of(c))),
            outcome=lambda s: f"{ip1} moved to {where(ip1, s)}, externalIPs {ip_list((c.anchor,))}",
            summary=lambda s: f"{b.node} NotReady → {ip1} moved to {where(ip1, s)}",
            probe=Probe(ip1, 443),
        ),
        Step(
            title=f"gitea-ssh asks for a second IP, {ip2}",
            prepare=second_service,
            act=lambda: annotate(GITEA, ip2),
            expect=all_of(
                ip_apart(ip2, ip1, droplets),
                external_ips(gitea, holder_anchor(ip2, droplets)),
                opened(SSH | WEB),
                ip_on(ip1, c, droplets),
            ),
            outcome=lambda s: (
                f"{ip2} on {where(ip2, s)}, a different droplet from {ip1}'s ({where(ip1, s)});"
                f" firewall opens {port_list(SSH | WEB)}"
            ),
            summary=lambda s: f"gitea-ssh claims {ip2} → it lands on {where(ip2, s)}",
        ),
        Step(
            title="Traefik's annotation is removed",
            prepare=lambda: None,
            act=lambda: annotate(TRAEFIK, None),
            expect=all_of(closed(WEB), opened(SSH)),
            outcome=lambda s: (
                f"firewall closed {port_list(WEB)}; {port_list(SSH)} stays open for {GITEA};"
                f" {ip1} stays on {where(ip1, s)}, unclaimed"
            ),
            summary=lambda s: f"annotation removed → {port_list(WEB)} closed",
        ),
        Step(
            title=f"{a.node} loses power",
            prepare=free_node_back,
            act=power_off,
            expect=all_of(ip_on(ip2, b, droplets), external_ips(gitea, anchor_of(b))),
            outcome=lambda s: (
                f"{ip2} moved to {where(ip2, s)} (its Lease stale, node Unreachable),"
                f" externalIPs {ip_list((b.anchor,))}"
            ),
            summary=lambda s: f"{a.node} loses power → {ip2} moved to {where(ip2, s)}",
            probe=Probe(ip2, 22, ("TCP",)),
        ),
    ]


def life_cycle(system: System, say: Narrator) -> list[Step]:
    """A Service gets an address it never named, and gives it back when it is deleted."""
    _a, _b, c = system.droplets
    ns = system.namespace
    kube = system.kube
    droplets = system.by_id()
    whoami = f"{ns}/{WHOAMI}"

    def cluster(text: str) -> None:
        say.say("cluster", text, CLUSTER)

    def where(ip: str, snapshot: Snapshot) -> str:
        return name_of(snapshot.ip(ip).droplet_id, droplets)

    def owned(snapshot: Snapshot) -> str:
        """The IP created for whoami, and where it rests."""
        service = snapshot.service(whoami)
        ip = service.owned if service else None
        return f"{ip} on {where(ip, snapshot)}" if ip else "no IP"

    def auto_service() -> None:
        kube.create_service(
            ns, WHOAMI, list(WHOAMI_PORTS), service_type="NodePort", external_traffic_policy="Local"
        )
        cluster(f"service {whoami} created (8000/tcp; NodePort, Local), not annotated yet")
        anchor = system.controllers.start_pod(ns, "whoami-1", c, WHOAMI)
        cluster(f"pod whoami-1 on {c.node}: init container wrote anchor {anchor}; Ready")

    def ask_for_auto() -> None:
        kube.annotate_service(ns, WHOAMI, {contract.ADDRESS: "auto"})
        cluster(f"annotated {whoami} {contract.ADDRESS}=auto")

    def delete_auto_service() -> None:
        kube.core.delete_namespaced_service(WHOAMI, ns)
        cluster(f"service {whoami} deleted: it waits on its finalizer {contract.FINALIZER}")

    return [
        Step(
            title="whoami asks for an address it never named (address: auto)",
            prepare=auto_service,
            act=ask_for_auto,
            expect=all_of(owns_ip_on(whoami, c, droplets), opened(HTTP)),
            outcome=lambda s: f"created for it: {owned(s)}; firewall opens {port_list(HTTP)}",
            summary=lambda s: f"whoami asks for auto → created: {owned(s)}",
        ),
        Step(
            title="whoami is deleted",
            prepare=lambda: None,
            act=delete_auto_service,
            expect=all_of(gone(whoami), only_ips(system.ips), closed(HTTP)),
            outcome=lambda _s: (
                f"the IP created for it was released (deleted from the account);"
                f" firewall closed {port_list(HTTP)}; the Service is gone"
            ),
            summary=lambda _s: "whoami deleted → its IP released, nothing left",
        ),
    ]
