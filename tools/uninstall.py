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
   (their annotations, entries and reserved IPs) stays. The namespaces are the function's
   ``NAMESPACES`` and every other one where kubectl finds a Service marked by us (left there
   when ``NAMESPACES`` was narrowed). In relay mode the function never called the cluster,
   so its address and CA come from kubectl's configuration.
3. What is left is listed (it should be nothing); only then is the cluster side deleted
   (``kubectl delete -k`` or ``helm uninstall``): the function's credentials go with it. The
   annotator's annotations on Nodes go next; Pods annotated by its init container are named
   (their workloads are yours to edit).
4. The function itself is undeployed with doctl (the command is printed).

Exit status 1 when something is left.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floating_ip.adapters.digitalocean import DigitalOcean
from floating_ip.adapters.kubernetes import Kubernetes
from floating_ip.apply import Applier
from floating_ip.config import CALLBACK, RELAY, Config, cluster_access_of, namespaces_of
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
ANNOTATOR_ANNOTATIONS = (contract.ANCHOR_IPV4, contract.DROPLET_ID)
"""What the annotator writes on a Node (DaemonSet mode) or a Pod (init-container mode)."""


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


def marked(service: Mapping[str, Any]) -> bool:
    """A Service (as kubectl prints it) that carries an annotation or the finalizer of ours."""
    metadata = service.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return contract.FINALIZER in (metadata.get("finalizers") or []) or any(
        key in annotations for key in contract.STATUS_ANNOTATIONS
    )


def cleaning_env(
    env: Mapping[str, str], marked_namespaces: Iterable[str], cluster: Mapping[str, str]
) -> dict[str, str]:
    """The function's settings for cleaning: every namespace where a Service is marked, on top
    of ``NAMESPACES`` (all, when it names none), and in relay mode the cluster's address and
    CA from kubectl's configuration (``cluster``: ``KUBE_API_URL``, ``KUBE_CA_DATA``)."""
    cleaning = dict(env)
    named = namespaces_of(env)
    if named:
        cleaning["NAMESPACES"] = ",".join(sorted({*named, *marked_namespaces}))
    if cluster_access_of(env) == RELAY:
        cleaning |= {"CLUSTER_ACCESS": CALLBACK, **cluster}
    return cleaning


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


def _kubectl_json(kubectl: str, *arguments: str) -> Any:
    command = [kubectl, *arguments, "-o", "json"]
    print("$ " + " ".join(command))
    done = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
    return json.loads(done.stdout)


def _marked_namespaces(kubectl: str) -> set[str]:
    services = _kubectl_json(kubectl, "get", "services", "--all-namespaces")["items"]
    return {s["metadata"]["namespace"] for s in services if marked(s)}


def _kubectl_cluster(kubectl: str) -> dict[str, str]:
    """The API server's URL and CA as kubectl reaches them (relay mode's function has none)."""
    config = _kubectl_json(kubectl, "config", "view", "--minify", "--raw")
    cluster = config["clusters"][0]["cluster"]
    found = {"KUBE_API_URL": cluster["server"]}
    if cluster.get("certificate-authority-data"):
        found["KUBE_CA_DATA"] = cluster["certificate-authority-data"]
    elif cluster.get("certificate-authority"):
        pem = Path(cluster["certificate-authority"]).read_bytes()
        found["KUBE_CA_DATA"] = base64.b64encode(pem).decode()
    return found


def _annotated_pods(kubectl: str) -> list[str]:
    pods = _kubectl_json(kubectl, "get", "pods", "--all-namespaces")["items"]
    return sorted(
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods
        if contract.ANCHOR_IPV4 in (p["metadata"].get("annotations") or {})
    )


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
    relay = cluster_access_of(env) == RELAY
    cluster = _kubectl_cluster(args.kubectl) if relay else {}
    env = cleaning_env(env, _marked_namespaces(args.kubectl), cluster)
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
    print("5. removing the annotator's annotations from the Nodes")
    _run(args.kubectl, "annotate", "nodes", "--all", *(f"{key}-" for key in ANNOTATOR_ANNOTATIONS))
    for pod in _annotated_pods(args.kubectl):
        print(f"   Pod {pod} keeps the anchor its init container wrote: remove that init")
        print("   container from its workload's spec (the annotation goes with the next Pod)")
    print("6. and the function: doctl serverless undeploy floating-ip/reconcile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
