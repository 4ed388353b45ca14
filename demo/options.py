"""The demo's command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_LATENCY = 2.0
DEFAULT_STEP_TIMEOUT = 30.0
LEASE_STALE_AFTER = "4s"
"""The demo's ``NODE_LEASE_STALE_AFTER`` (default 20 s): its pods' addresses are not on this
machine's network, so a dead node is found by its kubelet Lease alone, and sooner than by
default to keep the story short."""


@dataclass(frozen=True)
class Options:
    action_latency: float = DEFAULT_LATENCY
    """Seconds a reserved-IP action stays in progress in the DigitalOcean imitation."""
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    """Seconds a step may take, beyond three actions' latency, to reach its expected state."""
    color: bool = False
    verbose: bool = False
    """Also narrate the function's answers that change nothing."""
    keep: bool = False
    """Keep the working files (logs, certificates) instead of removing them at the end."""
    check_contract: bool = True
    """Check every DigitalOcean API call against the OpenAPI spec (when the spec is found)."""
    forwarder_env: tuple[tuple[str, str], ...] = ()
    """Settings of the forwarder beyond its Deployment's, as a user would set them."""
    kubelet_renewal: float = 1.0
    """Seconds between a simulated kubelet's renewals of its node's Lease (real: ~10 s)."""
    cluster_access: str = "callback"
    """``relay``: the function is given no way to the apiserver; the forwarder sends the state
    and makes the Kubernetes writes (``deploy/components/relay``'s rights)."""
    data_path: bool = False
    """Send packets to the reserved IPs through a real kube-proxy on each node, where this
    machine can (``python -m demo`` asks for it; the benchmarks built on the demo do not)."""

    @property
    def deadline(self) -> float:
        return self.step_timeout + 3 * self.action_latency


def parse(argv: Sequence[str]) -> Options:
    cli = argparse.ArgumentParser(
        prog="python -m demo",
        description=(
            "Runs the whole system locally (control plane, DigitalOcean API and metadata "
            "imitations, the function, the forwarder, the annotator), narrates a failover "
            "scenario, then stops everything. As root, with ip, nft, iptables and conntrack, a "
            "client also sends requests to the reserved IP through a real kube-proxy on each "
            "node across each move. Exit status 0 only if every step reached its expected state."
        ),
    )
    cli.add_argument(
        "--action-latency",
        type=_seconds,
        default=DEFAULT_LATENCY,
        metavar="SECONDS",
        help=f"how long a reserved-IP assignment takes (default {DEFAULT_LATENCY:g})",
    )
    cli.add_argument(
        "--step-timeout",
        type=_seconds,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help=f"time each step may take, plus 3 action latencies (default {DEFAULT_STEP_TIMEOUT:g})",
    )
    cli.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the output (auto: only on a terminal, and not when NO_COLOR is set)",
    )
    cli.add_argument(
        "-v", "--verbose", action="store_true", help="also show calls that change nothing"
    )
    cli.add_argument(
        "--keep", action="store_true", help="keep the working files (logs) after the end"
    )
    cli.add_argument(
        "--no-contract-check",
        action="store_true",
        help="do not check DigitalOcean API calls against the OpenAPI spec",
    )
    cli.add_argument(
        "--cluster-access",
        choices=("callback", "relay"),
        default="callback",
        help="relay: the function reaches no apiserver; the forwarder carries state and writes",
    )
    args = cli.parse_args(argv)
    return Options(
        action_latency=args.action_latency,
        step_timeout=args.step_timeout,
        color=_color(args.color),
        verbose=args.verbose,
        keep=args.keep,
        check_contract=not args.no_contract_check,
        forwarder_env=(("NODE_LEASE_STALE_AFTER", LEASE_STALE_AFTER),),
        cluster_access=args.cluster_access,
        data_path=True,
    )


def _color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value
