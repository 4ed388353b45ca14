"""Whether a claimed reserved IP can be used at all: it must exist and be in our region."""

from __future__ import annotations

from collections.abc import Mapping

from floating_ip.core.model import Cluster, Problem, Reason, ReservedIP


def check_ip(ip: str, reserved: Mapping[str, ReservedIP], cluster: Cluster) -> Problem | None:
    """The problem that makes ``ip`` unusable for this cluster, or ``None``."""
    found = reserved.get(ip)
    if found is None:
        return Problem(
            Reason.IP_NOT_IN_ACCOUNT,
            f"Reserved IP {ip} is not in this DigitalOcean account (or the token cannot see it)",
        )
    if found.region != cluster.region:
        return Problem(
            Reason.WRONG_REGION,
            f"Reserved IP {ip} is in region {found.region}, but the cluster is in {cluster.region}",
        )
    return None
