"""What a step expects to see. A check returns what is still missing, in words; an empty list
means the expected state is reached (pure)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from demo.model import Droplet, Opening, Snapshot, ip_list, name_of, port_list

Check = Callable[[Snapshot], list[str]]


def all_of(*checks: Check) -> Check:
    def check(snapshot: Snapshot) -> list[str]:
        return [missing for one in checks for missing in one(snapshot)]

    return check


def ip_on(ip: str, droplet: Droplet, droplets: Mapping[int, Droplet]) -> Check:
    """``ip`` rests on ``droplet``: assigned there, no action in progress."""

    def check(snapshot: Snapshot) -> list[str]:
        state = snapshot.ip(ip)
        if state.droplet_id != droplet.droplet_id:
            where = name_of(state.droplet_id, droplets)
            return [f"{ip} should be on {droplet.node}, is on {where}"]
        return [f"{ip} still has an action in progress"] if state.locked else []

    return check


def ip_apart(ip: str, other: str, droplets: Mapping[int, Droplet]) -> Check:
    """``ip`` rests on a droplet of the cluster other than the one holding ``other``."""

    def check(snapshot: Snapshot) -> list[str]:
        state, other_state = snapshot.ip(ip), snapshot.ip(other)
        if state.droplet_id not in droplets:
            return [f"{ip} should be on a droplet of the cluster, is on {state.droplet_id or '—'}"]
        if state.droplet_id == other_state.droplet_id:
            return [f"{ip} shares {name_of(state.droplet_id, droplets)} with {other}"]
        return [f"{ip} still has an action in progress"] if state.locked else []

    return check


def owns_ip_on(ref: str, droplet: Droplet, droplets: Mapping[int, Droplet]) -> Check:
    """The Service owns a reserved IP created for it, resting on ``droplet``."""

    def check(snapshot: Snapshot) -> list[str]:
        service = snapshot.service(ref)
        if service is None or service.owned is None:
            return [f"{ref} should own a reserved IP created for it"]
        if service.owned not in {state.ip for state in snapshot.ips}:
            return [f"{service.owned} should be in the account"]
        return ip_on(service.owned, droplet, droplets)(snapshot)

    return check


def gone(ref: str) -> Check:
    """The Service no longer exists (its finalizer was removed after the cleanup)."""

    def check(snapshot: Snapshot) -> list[str]:
        return [f"{ref} should be gone"] if snapshot.service(ref) is not None else []

    return check


def only_ips(ips: Collection[str]) -> Check:
    """The account holds exactly ``ips``: whatever was created for a Service was released."""

    def check(snapshot: Snapshot) -> list[str]:
        extra = sorted({state.ip for state in snapshot.ips} - set(ips))
        return [f"{ip_list(tuple(extra))} should be released"] if extra else []

    return check


def external_ips(ref: str, expected: Callable[[Snapshot], tuple[str, ...]]) -> Check:
    """The Service's ``spec.externalIPs`` is exactly what ``expected`` says for the snapshot."""

    def check(snapshot: Snapshot) -> list[str]:
        service = snapshot.service(ref)
        if service is None:
            return [f"service {ref} does not exist"]
        wanted = expected(snapshot)
        found = service.external_ips
        if found != wanted:
            return [f"{ref} externalIPs should be {ip_list(wanted)}, are {ip_list(found)}"]
        return []

    return check


def anchor_of(droplet: Droplet) -> Callable[[Snapshot], tuple[str, ...]]:
    return lambda _snapshot: (droplet.anchor,)


def holder_anchor(
    ip: str, droplets: Mapping[int, Droplet]
) -> Callable[[Snapshot], tuple[str, ...]]:
    """The anchor of whichever droplet holds ``ip`` in the snapshot."""

    def expected(snapshot: Snapshot) -> tuple[str, ...]:
        holder = droplets.get(snapshot.ip(ip).droplet_id or 0)
        return (holder.anchor,) if holder else ()

    return expected


def opened(ports: Collection[Opening]) -> Check:
    def check(snapshot: Snapshot) -> list[str]:
        missing = frozenset(ports) - snapshot.openings
        return [f"the firewall should open {port_list(missing)}"] if missing else []

    return check


def closed(ports: Collection[Opening]) -> Check:
    def check(snapshot: Snapshot) -> list[str]:
        still = frozenset(ports) & snapshot.openings
        return [f"the firewall should no longer open {port_list(still)}"] if still else []

    return check
