"""The project's own firewall: what it should be, and the one write that gets it there.

- Inbound rules come from every Service that holds a usable reserved IP and has its firewall
  enabled. Cloud firewalls filter by port, not by destination IP, so two Services opening
  the same port share one rule whose sources are the union of theirs.
- The firewall is named ``floating-ip-<cluster-id>`` and applies to the tag
  ``k8s:<cluster-id>`` (every worker droplet). Outbound rules and droplet ids found on it
  are kept as they are; a new firewall gets none.
- It is created when missing and rules are wanted, fully replaced (PUT) only when its
  NORMALISED form differs, and DELETED when no rule is wanted: the API refuses to create a
  firewall without rules, and an empty firewall would only be clutter to explain.
- If the rules would exceed DigitalOcean's limit, nothing is written and the problem is
  reported: a partial firewall would silently close some Services' ports.
- A firewall with any other name is never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from floating_ip.core.firewall_rules import normal_rules
from floating_ip.core.model import (
    Cluster,
    Firewall,
    FirewallAction,
    FirewallBody,
    FirewallChange,
    FirewallRule,
    Problem,
    Reason,
)

MAX_RULES: Final = 50
"""DigitalOcean's limit on inbound plus outbound rules per firewall."""


@dataclass(frozen=True, slots=True)
class FirewallDecision:
    change: FirewallChange | None
    problem: Problem | None = None


def same(current: Firewall, desired: FirewallBody) -> bool:
    """Equal once both are normalised (rule order and spelling do not count)."""
    return (
        normal_rules(current.inbound_rules) == normal_rules(desired.inbound_rules)
        and normal_rules(current.outbound_rules) == normal_rules(desired.outbound_rules)
        and sorted(set(current.tags)) == sorted(set(desired.tags))
        and sorted(set(current.droplet_ids)) == sorted(set(desired.droplet_ids))
    )


def desired_body(
    current: Firewall | None, inbound: tuple[FirewallRule, ...], cluster: Cluster
) -> FirewallBody:
    return FirewallBody(
        name=cluster.firewall_name,
        inbound_rules=inbound,
        outbound_rules=current.outbound_rules if current else (),
        tags=(cluster.cluster_tag,),
        droplet_ids=current.droplet_ids if current else (),
    )


def over_limit(body: FirewallBody) -> Problem | None:
    inbound, outbound = len(body.inbound_rules), len(body.outbound_rules)
    if inbound + outbound <= MAX_RULES:
        return None
    message = (
        f"Firewall {body.name} would need {inbound} inbound and {outbound} outbound rules, "
        f"over DigitalOcean's limit of {MAX_RULES}; it is left unchanged"
    )
    return Problem(Reason.FIREWALL_LIMIT, message)


def decide_firewall(
    current: Firewall | None, inbound: tuple[FirewallRule, ...], cluster: Cluster
) -> FirewallDecision:
    """The change (if any) that makes ``current`` hold exactly ``inbound``."""
    if current is not None and current.name != cluster.firewall_name:
        return FirewallDecision(None)
    if not inbound:
        delete = FirewallChange(FirewallAction.DELETE, current.id) if current else None
        return FirewallDecision(delete)
    body = desired_body(current, inbound, cluster)
    problem = over_limit(body)
    if problem is not None:
        return FirewallDecision(None, problem)
    if current is None:
        return FirewallDecision(FirewallChange(FirewallAction.CREATE, None, body))
    if same(current, body):
        return FirewallDecision(None)
    return FirewallDecision(FirewallChange(FirewallAction.UPDATE, current.id, body))
