"""Uninstall doks-floating-ip so that nothing of it is left, and show that nothing is.

    python -m tools.uninstall --env .env --kustomize deploy/example
    python -m tools.uninstall --env .env --helm-release floating-ip

1. The forwarder is stopped (``kubectl scale --replicas=0``): nothing calls the function
   while Services are cleaned, so nothing is put back.
2. Every Service is cleaned with the function's own code and credentials: the ``.env`` it is
   deployed with, and a 10-minute token of its ServiceAccount minted with ``kubectl create
   token`` (as the forwarder mints one for every call). Each is planned as if it had opted
   out (``core/uninstall.py``) and applied, until a plan is empty. Our entries in
   ``spec.externalIPs`` and the ingress, our annotations and finalizer go; reserved IPs
   created for ``address: auto`` are released; the firewall is deleted. What users wrote
   (their annotations, entries and reserved IPs) stays.
3. What is left is listed (it should be nothing); only then is the cluster side deleted
   (``kubectl delete -k`` or ``helm uninstall``): the function's credentials go with it.
4. The function itself is undeployed with doctl (the command is printed).

Exit status 1 when something is left.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip.apply import Applier
from floating_ip.config import Config
from floating_ip.core.annotations import owned_address
from floating_ip.core.finalizers import finalized
from floating_ip.core.model import Observation
from floating_ip.core.uninstall import uninstall_plan
from floating_ip.deadline import Deadline
from floating_ip.errors import ConflictError
from floating_ip.observe import observe
from floating_ip_common import contract

ROUNDS = 6
"""Plans applied at most: a released IP may need its unassign action first."""
ROUND_SECONDS = 25.0
FORWARDER = "event-forwarder"


@dataclass
class Leftovers:
    services: list[str] = field(default_factory=list)
    """``namespace/name: what`` of each Service still carrying something of ours."""
    firewall: str | None = None
    owned_ips: list[str] = field(default_factory=list)
    """Reserved IPs created for Services that still exist in the account."""

    @property
    def nothing(self) -> bool:
        return not (self.services or self.firewall or self.owned_ips)

    def lines(self) -> list[str]:
        if self.nothing:
            return ["nothing is left"]
        found = [f"Service {line}" for line in self.services]
        if self.firewall:
            found.append(f"firewall {self.firewall}")
        found += [f"reserved IP {ip} created for a Service" for ip in self.owned_ips]
        return found


def _observe(config: Config, token: str) -> Observation:
    kube = Kubernetes(config.kube_api_url, token, config.kube_ca_pem)
    do = DigitalOcean(config.digitalocean_token, config.digitalocean_api_url)
    try:
        return observe(config, kube, do, Deadline(ROUND_SECONDS))
    finally:
        kube.close()
        do.close()


def clean(env: Mapping[str, str], token: str) -> Leftovers:
    """Step 2: apply uninstall plans until one is empty; then what is left. ``token``: the
    function's ServiceAccount's, as the forwarder sends it with each event."""
    config = Config.from_env(env)
    first = _observe(config, token)
    owned = sorted({ip for s in first.services if (ip := owned_address(s))})
    for _ in range(ROUNDS):
        observation = _observe(config, token)
        removal = uninstall_plan(observation)
        if removal.is_empty:
            break
        kube = Kubernetes(config.kube_api_url, token, config.kube_ca_pem)
        do = DigitalOcean(config.digitalocean_token, config.digitalocean_api_url)
        try:
            applied = Applier(kube, do, Deadline(ROUND_SECONDS), dry_run=False).apply(removal)
            for error in applied.errors:
                print(f"  {error}", file=sys.stderr)
        except ConflictError:
            continue  # someone wrote meanwhile: observe again
        finally:
            kube.close()
            do.close()
    return leftovers(_observe(config, token), owned)


def leftovers(observation: Observation, owned: Sequence[str]) -> Leftovers:
    found = Leftovers()
    for service in sorted(observation.services, key=lambda service: service.ref):
        ours = [key for key, _ in service.annotations if key in contract.STATUS_ANNOTATIONS]
        if finalized(service):
            ours.append(f"finalizer {contract.FINALIZER}")
        if ours:
            found.services.append(f"{service.ref}: {', '.join(ours)}")
    if observation.firewall is not None:
        found.firewall = observation.firewall.name
    existing = {ip.ip for ip in observation.reserved_ips}
    found.owned_ips = [ip for ip in owned if ip in existing]
    return found


def read_env(lines: Iterable[str]) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments, optional quotes), as ``.env.example`` has them."""
    env: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, _, value = text.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _run(*command: str) -> None:
    """One step's command, shown before it runs (the user chose the programs)."""
    print("$ " + " ".join(command))
    subprocess.run(command, check=True)  # noqa: S603 (an argument list, no shell)


def _mint(kubectl: str, namespace: str) -> str:
    """A 10-minute token of the function's ServiceAccount (never printed)."""
    command = [kubectl, "create", "token", contract.FUNCTION_ACCOUNT, "-n", namespace]
    print("$ " + " ".join([*command, "--duration=10m"]))
    done = subprocess.run(  # noqa: S603 (an argument list, no shell)
        [*command, "--duration=10m"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="the function's .env file")
    parser.add_argument("--namespace", default=contract.SUSPICIONS_NAMESPACE)
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--kustomize", metavar="DIR", help="the overlay you applied")
    side.add_argument("--helm-release", metavar="NAME")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--helm", default="helm")
    args = parser.parse_args(argv)
    with Path(args.env).open(encoding="utf-8") as lines:
        env = read_env(lines)

    print("1. stopping the forwarder, so nothing calls the function meanwhile")
    _run(args.kubectl, "scale", "deployment", FORWARDER, "-n", args.namespace, "--replicas=0")
    print("2. cleaning every Service with the function's code and credentials")
    token = _mint(args.kubectl, args.namespace)
    left = clean(env, token)
    print("3. what is left:")
    for line in left.lines():
        print(f"   {line}")
    if not left.nothing:
        print("   the cluster side stays so the function can finish; run this again")
        return 1
    print("4. deleting the cluster side")
    if args.kustomize:
        _run(args.kubectl, "delete", "-k", args.kustomize, "--ignore-not-found")
    else:
        _run(args.helm, "uninstall", args.helm_release, "-n", args.namespace)
    print("5. and the function: doctl serverless undeploy floating-ip/reconcile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
