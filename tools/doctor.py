#!/usr/bin/env python3
"""The doctor: checks a live doks-floating-ip setup and prints one line per check, with the
fix for each failure. Read-only: it reads the cluster, reads DigitalOcean, asks the authorizer
whether the forwarder may mint the function's short-lived token and leave a Warning on a
node it sees failing from one vantage point only, calls the function without
the secret, with it but without a token, and with a 10-minute token (minted as the forwarder
does) asking for a dry-run resync, and proves
externalIPs with a server-side dry run (or, in LoadBalancer-class mode, asks the authorizer
whether it may patch services/status). Exit status 1 when any check fails.

    DIGITALOCEAN_TOKEN=... python3 tools/doctor.py [--namespace floating-ip] [--context ctx]

Standard library only, so it runs from a clone without a virtualenv. The cluster is read
through kubectl, so your kubeconfig's credential plugin (doctl's) works as usual.
Environment: DIGITALOCEAN_TOKEN (required), DIGITALOCEAN_API_URL (default the real API),
KUBECTL (default kubectl), SSL_CERT_FILE (a CA bundle, if yours is private), WEB_SECRET (when
you may not read the forwarder's Secret).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    from floating_ip_common import contract
except ImportError:
    # Users run `python3 tools/doctor.py` from a clone with their own Python (README,
    # troubleshooting), not the project's venv whose .pth file holds in-cluster/: the
    # shared names are found there from this file's place.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "in-cluster"))
    from floating_ip_common import contract

DEFAULT_API = "https://api.digitalocean.com"
FORWARDER = "event-forwarder"
FUNCTION_ACCOUNT = "floating-ip-function"
TIMEOUT = 30.0
FIREWALL_FIX = (
    "check KUBE_API_URL and KUBE_CA_DATA in the function's .env "
    "(deploy/function-env.sh prints them); if the cluster's control-plane firewall is on, "
    "allow all sources: DigitalOcean Functions have no fixed egress IPs"
)
MINTED_LIFETIME = "10m"
"""What the forwarder mints for each call: the shortest lifetime the TokenRequest API allows."""
TOKEN_CALLS = (
    # (scope, path, what the function needs it for); {cluster} is the cluster id
    ("reserved_ip:read", "/v2/reserved_ips?per_page=1", "to find and assign reserved IPs"),
    ("droplet:read", "/v2/droplets?per_page=1", "to map nodes to droplets"),
    ("firewall:read", "/v2/firewalls?per_page=1", "to keep the Services' ports open"),
    ("kubernetes:read", "/v2/kubernetes/clusters/{cluster}", "to read the cluster's region"),
)


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail} -> fix: {self.fix}"


class Unavailable(Exception):
    """A prerequisite failed; the message says which."""


# --- the two APIs, read-only -------------------------------------------------------------------


@dataclass
class Kubectl:
    binary: str
    args: Sequence[str] = ()

    def run(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (the user's kubectl, fixed arguments)
            [self.binary, *self.args, *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
            check=False,
        )

    def get(self, *args: str) -> Any:
        done = self.run("get", *args, "-o", "json")
        if done.returncode != 0:
            raise Unavailable(f"kubectl get {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout)


@dataclass
class DigitalOcean:
    token: str
    url: str = DEFAULT_API

    def get(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 (the API's https URL)
            self.url.rstrip("/") + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        return _call(request)


def _call(request: urllib.request.Request) -> tuple[int, Any]:
    """Status and decoded JSON body (``{}`` when not JSON); status 0 when unreachable."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:  # noqa: S310 (https)
            status, body = int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        status, body = int(error.code), error.read()
    except (urllib.error.URLError, OSError) as error:
        return 0, {"message": str(getattr(error, "reason", error))}
    try:
        return status, json.loads(body or b"{}")
    except ValueError:
        return status, {"message": body[:200].decode(errors="replace")}


# --- what the checks need from the cluster ------------------------------------------------------


@dataclass
class Setup:
    namespace: str
    function_url: str = ""
    cluster_id: str = ""
    web_secret: str = field(default="", repr=False)
    services: list[dict[str, Any]] = field(default_factory=list)
    """Services annotated with a reserved IP."""
    kube_token: str = field(default="", repr=False)
    """A 10-minute token of the function's ServiceAccount, as the forwarder sends one."""
    cluster_access: str = "callback"
    """The forwarder's ``CLUSTER_ACCESS``: ``relay`` means the function never calls back."""


def read_setup(kube: Kubectl, namespace: str, web_secret: str) -> tuple[Setup, Result]:
    """The forwarder's settings (the function's URL, the cluster id, the shared secret) and the
    annotated Services; the result says whether the install is there."""
    setup = Setup(namespace)
    try:
        deployment = kube.get("deployment", FORWARDER, "-n", namespace)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                data = kube.get("configmap", name, "-n", namespace).get("data", {})
                setup.function_url = data.get("FUNCTION_URL", "")
                setup.cluster_id = data.get("CLUSTER_ID", "")
                setup.cluster_access = data.get("CLUSTER_ACCESS", "") or "callback"
        setup.web_secret = web_secret or _web_secret(kube, namespace, container)
        items = kube.get("services", "--all-namespaces")["items"]
    except Unavailable as error:
        fix = "install it (README, step 3) or pass --namespace"
        return setup, Result("install", False, str(error), fix)
    setup.services = [
        s for s in items if contract.ADDRESS in (s["metadata"].get("annotations") or {})
    ]
    missing = [
        n
        for n, v in (("FUNCTION_URL", setup.function_url), ("CLUSTER_ID", setup.cluster_id))
        if not v
    ]
    if missing:
        fix = "set them in your overlay (deploy/example) or chart values"
        return setup, Result("install", False, f"the forwarder has no {', '.join(missing)}", fix)
    detail = f"forwarder in {namespace}, {len(setup.services)} annotated Service(s)"
    return setup, Result("install", True, detail)


def _web_secret(kube: Kubectl, namespace: str, container: dict[str, Any]) -> str:
    for var in container.get("env", []):
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if var["name"] == "WEB_SECRET" and ref:
            data = kube.get("secret", ref["name"], "-n", namespace).get("data", {})
            return base64.b64decode(data.get(ref["key"], "")).decode()
    return ""


def _ip(service: dict[str, Any]) -> str:
    return str(service["metadata"]["annotations"][contract.ADDRESS])


def _name(service: dict[str, Any]) -> str:
    return f"{service['metadata']['namespace']}/{service['metadata']['name']}"


# --- the checks -----------------------------------------------------------------------------------


def check_token(do: DigitalOcean, cluster_id: str) -> list[Result]:
    """What DigitalOcean answers the token for each read the function makes. Write scopes
    (reserved_ip:update, firewall:update, ...) cannot be proven without writing."""
    results = []
    for scope, template, why in TOKEN_CALLS:
        path = template.format(cluster=cluster_id)
        status, body = do.get(path)
        name = f"token {scope}"
        if status == 200:
            results.append(Result(name, True, f"GET {path.split('?')[0]}: 200"))
            continue
        message = body.get("message", "") if isinstance(body, dict) else ""
        fix = {
            0: "check your network, DIGITALOCEAN_API_URL and SSL_CERT_FILE",
            401: "the token is wrong, expired or revoked: create a new one",
            403: f"give the token the {scope} scope ({why})",
            404: "CLUSTER_ID names no cluster of this account: doctl kubernetes cluster list",
        }.get(status, "retry; if it persists, see status.digitalocean.com")
        results.append(Result(name, False, f"{status} {message}".strip(), fix))
    return results


def cluster_region(do: DigitalOcean, cluster_id: str) -> str:
    status, body = do.get(f"/v2/kubernetes/clusters/{cluster_id}")
    if status != 200:
        raise Unavailable(f"cannot read cluster {cluster_id} ({status})")
    return str(body["kubernetes_cluster"]["region"])


def check_ips(do: DigitalOcean, setup: Setup) -> list[Result]:
    """For each annotated IP: in this account, in the cluster's region, and where assigned."""
    try:
        region = cluster_region(do, setup.cluster_id)
    except Unavailable as error:
        return [Result("reserved IPs", False, str(error), "fix the token checks above first")]
    results = []
    for service in setup.services:
        ip, name = _ip(service), _name(service)
        status, body = do.get(f"/v2/reserved_ips/{ip}")
        if status == 404:
            fix = f"reserve it (doctl compute reserved-ip create --region {region})"
            results.append(
                Result(f"ip {ip}", False, f"{name}: not a reserved IP of this account", fix)
            )
            continue
        if status != 200:
            results.append(
                Result(f"ip {ip}", False, f"{name}: {status}", "fix the token checks above")
            )
            continue
        found = body["reserved_ip"]
        ip_region = found["region"]["slug"]
        if ip_region != region:
            fix = f"reserve an IP in {region}: a reserved IP only reaches droplets of its region"
            results.append(
                Result(f"region {ip}", False, f"IP in {ip_region}, cluster in {region}", fix)
            )
        else:
            results.append(Result(f"region {ip}", True, f"{ip_region}, as the cluster"))
        droplet = found.get("droplet")
        where = (
            f"assigned to droplet {droplet['id']} ({droplet.get('name', '?')})"
            if droplet
            else "unassigned"
        )
        results.append(Result(f"ip {ip}", True, f"{name}: in the account, {where}"))
    return results


def check_external_ips(kube: Kubectl, setup: Setup) -> list[Result]:
    """The function's identity may write what exposes each annotated Service: a server-side
    dry run of its ``spec.externalIPs`` patch (so admission policies answer too), or, in
    LoadBalancer-class mode, the authorizer's word on patching ``services/status``; a
    LoadBalancer Service of another class fails (the function does not place it)."""
    results = []
    account = f"system:serviceaccount:{setup.namespace}:{FUNCTION_ACCOUNT}"
    for service in setup.services:
        meta, spec = service["metadata"], service["spec"]
        where = ("-n", meta["namespace"], f"--as={account}", "--dry-run=server")
        if spec.get("type") == "LoadBalancer":
            if spec.get("loadBalancerClass") != contract.LOAD_BALANCER_CLASS:
                results.append(_foreign_class(service))
                continue
            # kubectl's patch of a subresource reads it first, which the function never needs
            # (nor may): ask the authorizer instead. Admission does not look at status.
            done = kube.run(
                *("auth", "can-i", "patch", "services", "--subresource=status"),
                *("-n", meta["namespace"], f"--as={account}"),
            )
            name = f"status {_name(service)}"
        else:
            current = spec.get("externalIPs") or ["10.0.0.1"]
            patch = json.dumps({"spec": {"externalIPs": current}})
            done = kube.run(
                *("patch", "service", meta["name"]), *("--type=merge", "-p", patch, *where)
            )
            name = f"externalIPs {_name(service)}"
        if done.returncode == 0:
            how = "authorizer" if name.startswith("status") else "server-side dry run"
            results.append(Result(name, True, f"allowed ({how})"))
            continue
        error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "refused"
        if name.startswith("status") and not done.stderr.strip():
            error = "cannot patch services/status"
        if "impersonate" in error:
            fix = "run the doctor as a cluster admin: it acts as the function's ServiceAccount"
        elif "cannot patch" in error:
            what = "services/status" if name.startswith("status") else "services"
            fix = f"let the function patch {what} (deploy/base/rbac/function.yaml)"
        else:
            fix = (
                "allow externalIPs for this Service in your admission policy "
                "(DenyServiceExternalIPs, Gatekeeper, Kyverno, a ValidatingAdmissionPolicy), "
                f"or make it type LoadBalancer of class {contract.LOAD_BALANCER_CLASS}"
            )
        results.append(Result(name, False, error, fix))
    return results


def _foreign_class(service: dict[str, Any]) -> Result:
    found = service["spec"].get("loadBalancerClass") or "no class"
    return Result(
        f"class {_name(service)}",
        False,
        f"type LoadBalancer with {found}: the function does not place its IP",
        f"set spec.loadBalancerClass {contract.LOAD_BALANCER_CLASS} (switch the type to "
        "ClusterIP and back: the class of a LoadBalancer Service cannot change)",
    )


def check_annotator(kube: Kubectl, setup: Setup) -> list[Result]:
    """Every pod behind an annotated Service has its anchor IP, on itself or on its node."""
    results = []
    nodes = {n["metadata"]["name"]: n for n in kube.get("nodes")["items"]}
    for service in setup.services:
        selector = service["spec"].get("selector") or {}
        name = f"annotator {_name(service)}"
        if not selector:
            results.append(Result(name, False, "the Service has no selector", "give it one"))
            continue
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = kube.get("pods", "-n", service["metadata"]["namespace"], "-l", labels)["items"]
        if not pods:
            results.append(Result(name, False, "no pods match its selector", "start its pods"))
            continue
        bare = [
            p["metadata"]["name"]
            for p in pods
            if contract.ANCHOR_IPV4 not in (p["metadata"].get("annotations") or {})
            and contract.ANCHOR_IPV4
            not in (
                nodes.get(p["spec"].get("nodeName", ""), {}).get("metadata", {}).get("annotations")
                or {}
            )
        ]
        if bare:
            fix = (
                "run the node annotator (deploy/base) or the init container "
                "(deploy/annotator-pod-mode) and read its logs"
            )
            results.append(
                Result(
                    name,
                    False,
                    f"no {contract.ANCHOR_IPV4} on pod(s) {', '.join(bare)} nor their nodes",
                    fix,
                )
            )
        else:
            results.append(Result(name, True, f"{len(pods)} pod(s) have their anchor IP"))
    return results


def check_datapath(kube: Kubectl, setup: Setup) -> list[Result]:
    """Which proxy serves the anchor and the reserved IP on the nodes: kube-proxy is what the
    project's data-path tests prove (docs/proven.md); Cilium's replacement is not proven."""
    daemonsets = {
        d["metadata"]["name"] for d in kube.get("daemonsets", "-n", "kube-system")["items"]
    }
    if "kube-proxy" in daemonsets:
        return [Result("datapath", True, "kube-proxy (the proxy the project's tests prove)")]
    if not any(name.startswith("cilium") for name in daemonsets):
        fix = "find what proxies Services on the nodes; the anchor must be served by it"
        return [Result("datapath", False, "neither kube-proxy nor Cilium in kube-system", fix)]
    done = kube.run("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
    config = json.loads(done.stdout).get("data", {}) if done.returncode == 0 else {}
    mode = config.get("kube-proxy-replacement", "unknown")
    detail = (
        f"Cilium, kube-proxy-replacement {mode}: not proven by the project's tests; check that "
        "`kubectl -n kube-system exec ds/cilium -- cilium-dbg service list` lists the anchor and "
        "the reserved IP on the Service's ports and that the pod sees the client's address"
    )
    return [Result("datapath", True, detail)]


def check_forwarder(
    kube: Kubectl, setup: Setup, now: Callable[[], float] = time.time
) -> list[Result]:
    """A replica holds the election Lease and renews it; the leader's last accepted event."""
    try:
        lease = kube.get("lease", FORWARDER, "-n", setup.namespace)
    except Unavailable as error:
        fix = f"no replica ever led: kubectl -n {setup.namespace} logs deploy/{FORWARDER}"
        return [Result("forwarder leader", False, str(error), fix)]
    spec = lease.get("spec", {})
    holder = spec.get("holderIdentity") or ""
    renewed = spec.get("renewTime")
    duration = float(spec.get("leaseDurationSeconds") or 15)
    age = now() - _timestamp(renewed) if renewed else float("inf")
    logs = f"kubectl -n {setup.namespace} logs deploy/{FORWARDER}"
    if not holder or age > 2 * duration:
        detail = f"Lease held by {holder or 'nobody'}, renewed {age:.0f}s ago"
        return [Result("forwarder leader", False, detail, f"are its pods running? {logs}")]
    results = [Result("forwarder leader", True, f"{holder}, renewed {age:.0f}s ago")]
    path = f"/api/v1/namespaces/{setup.namespace}/pods/{holder}:8080/proxy/metrics"
    done = kube.run("get", "--raw", path)
    last = _metric(done.stdout, "floating_ip_forwarder_last_success_timestamp_seconds")
    if done.returncode != 0 or last is None:
        problem = done.stderr.strip() or "no last_success_timestamp_seconds metric"
        results.append(Result("forwarder last send", False, problem, f"read {logs}"))
    elif last == 0:
        results.append(
            Result(
                "forwarder last send",
                False,
                "no event accepted yet",
                f"see the function's 4xx/5xx in {logs}",
            )
        )
    else:
        results.append(Result("forwarder last send", True, f"{now() - last:.0f}s ago"))
    return results


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def _event(cluster_id: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "/doks-floating-ip/doctor",
        "ce-type": contract.EVENT_RESYNC,
        "ce-clusterid": cluster_id,
        "ce-dryrun": "true",
        "Content-Type": "application/json",
    }


EMPTY_STATE: dict[str, Any] = {
    "services": [],
    "endpointslices": [],
    "pods": [],
    "nodes": [],
    "suspicions": {},
}
"""Relay mode's dry run: no Kubernetes objects, so only DigitalOcean is read."""


def _post(url: str, headers: dict[str, str], body: bytes = b"{}") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    return _call(request)


def check_function_token(kube: Kubectl, setup: Setup) -> list[Result]:
    """The forwarder may mint the function's token (its only cluster credential), and a token
    like the one it sends can be had for the calls below. In relay mode: the forwarder may
    make the writes the function answers with."""
    forwarder = f"system:serviceaccount:{setup.namespace}:{FORWARDER}"
    where = ("-n", setup.namespace)
    if setup.cluster_access == "relay":
        return _check_relay_rights(kube, forwarder)
    done = kube.run(
        *("auth", "can-i", "create", f"serviceaccounts/{FUNCTION_ACCOUNT}", "--subresource=token"),
        *(*where, f"--as={forwarder}"),
    )
    name = "forwarder mints the function's token"
    if done.returncode == 0:
        results = [Result(name, True, f"may create serviceaccounts/token for {FUNCTION_ACCOUNT}")]
    elif "impersonate" in done.stderr:
        fix = "run the doctor as a cluster admin: it asks as the forwarder's ServiceAccount"
        results = [Result(name, False, done.stderr.strip()[-200:], fix)]
    else:
        fix = (
            f"grant {FORWARDER} create on serviceaccounts/token for {FUNCTION_ACCOUNT} "
            "(deploy/base/rbac/event-forwarder.yaml, Role event-forwarder-function-token)"
        )
        results = [Result(name, False, "not allowed: events would go without a token", fix)]
    minted = kube.run("create", "token", FUNCTION_ACCOUNT, *where, f"--duration={MINTED_LIFETIME}")
    if minted.returncode == 0 and minted.stdout.strip():
        setup.kube_token = minted.stdout.strip()
    else:
        fix = f"the ServiceAccount {setup.namespace}/{FUNCTION_ACCOUNT} must exist (the install)"
        error = (minted.stderr.strip().splitlines() or ["no token"])[-1][:200]
        results.append(Result("function's ServiceAccount", False, error, fix))
    return results


def check_node_events(kube: Kubectl, setup: Setup) -> list[Result]:
    """The forwarder may leave a Warning on a node it sees failing from one vantage point only
    (an Event about a Node lives in ``default``)."""
    forwarder = f"system:serviceaccount:{setup.namespace}:{FORWARDER}"
    done = kube.run(
        *("auth", "can-i", "create", "events", "-n", contract.NODE_EVENTS_NAMESPACE),
        f"--as={forwarder}",
    )
    name = "forwarder may warn on a node"
    if done.returncode == 0:
        return [Result(name, True, f"may create events in {contract.NODE_EVENTS_NAMESPACE}")]
    if "impersonate" in done.stderr:
        fix = "run the doctor as a cluster admin: it asks as the forwarder's ServiceAccount"
        return [Result(name, False, done.stderr.strip()[-200:], fix)]
    fix = (
        f"grant {FORWARDER} create on events in {contract.NODE_EVENTS_NAMESPACE} (deploy/base/rbac/"
        "event-forwarder.yaml, Role floating-ip-event-forwarder-node-events)"
    )
    detail = "not allowed: a node failing from one vantage point is only logged"
    return [Result(name, False, detail, fix)]


def _check_relay_rights(kube: Kubectl, forwarder: str) -> list[Result]:
    results = []
    for verb, resource in (
        ("patch", "services"),
        ("patch", "services/status"),
        ("create", "events"),
    ):
        name, _, sub = resource.partition("/")
        extra = (f"--subresource={sub}",) if sub else ()
        done = kube.run("auth", "can-i", verb, name, *extra, "-A", f"--as={forwarder}")
        check = f"relay: forwarder may {verb} {resource}"
        if done.returncode == 0:
            results.append(Result(check, True, "allowed"))
        else:
            fix = "add the component deploy/components/relay (Helm: clusterAccess=relay)"
            results.append(Result(check, False, "not allowed", fix))
    return results


def check_function(setup: Setup) -> list[Result]:
    """Without the secret the function answers 401; with it but without the forwarder's token,
    400 naming the token (no standing credential); with both, a dry-run resync shows that it
    reached the Kubernetes API and DigitalOcean."""
    url = setup.function_url
    get_url = "doctl serverless functions get floating-ip/reconcile --url"
    if not url.startswith("https://"):
        return [Result("function secret", False, f"FUNCTION_URL {url!r} is not https", get_url)]
    status, body = _post(url, _event(setup.cluster_id))
    said = str(body.get("message") or body.get("error") or "")
    if status == 401:
        results = [Result("function secret", True, "401 without the secret")]
    elif status in (0, 404):
        return [Result("function secret", False, f"{status} {said}".strip(), get_url)]
    else:
        fix = "deploy it with web: raw and webSecure: ${WEB_SECRET} (project.yml)"
        results = [Result("function secret", False, f"{status} without the secret", fix)]
    signed = {**_event(setup.cluster_id), contract.AUTH_HEADER: setup.web_secret}
    if setup.cluster_access == "relay":
        return results + _check_relayed_function(url, signed)
    status, body = _post(url, signed)
    said = str(body.get("error") or "")
    name = "function wants the forwarder's token"
    if status == 400 and contract.KUBE_TOKEN_HEADER in said:
        results.append(Result(name, True, "400 without a token: it holds no cluster credential"))
    elif status == 401:
        pass  # the secret itself is wrong: said below
    else:
        fix = (
            "deploy this version of the function (project.yml has no KUBE_TOKEN), remove "
            "KUBE_TOKEN from its .env and delete the Secret floating-ip-function-token"
        )
        results.append(Result(name, False, f"{status} without a token", fix))
    name = "function reaches the APIs"
    status, body = _post(url, {**signed, contract.KUBE_TOKEN_HEADER: setup.kube_token})
    if status == 200:
        seen = body.get("observed", {})
        counts = f"{seen.get('nodes')} node(s), {seen.get('reserved_ips')} reserved IP(s)"
        results.append(Result(name, True, f"a dry-run resync saw {counts}"))
    elif status in (400, 401) and contract.KUBE_TOKEN_HEADER in str(body.get("error")):
        fix = f"no token of {FUNCTION_ACCOUNT} could be minted: see the checks above"
        results.append(Result(name, False, f"{status}: the token was refused or missing", fix))
    elif status == 401:
        fix = "the function's WEB_SECRET and the forwarder's Secret must be the same"
        results.append(Result(name, False, "401 with the forwarder's secret", fix))
    else:
        error = str(body.get("error") or body.get("errors") or body)[:300]
        fix = (
            FIREWALL_FIX
            if "kube" in error.lower()
            else "set the same CLUSTER_ID for the forwarder and the function"
            if "this function serves" in error
            else "read the error; see the function's .env"
        )
        results.append(Result(name, False, f"{status}: {error}", fix))
    return results


def _check_relayed_function(url: str, signed: dict[str, str]) -> list[Result]:
    """Relay mode: the function wants the state with each event (it never calls the cluster),
    and a dry-run resync with an empty state reaches DigitalOcean."""
    results = []
    status, body = _post(url, signed)
    said = str(body.get("error") or "")
    name = "function is in relay mode"
    if status == 400 and "no cluster state" in said:
        results.append(Result(name, True, "400 without the state: it never calls the cluster"))
    elif status == 400 and contract.KUBE_TOKEN_HEADER in said:
        fix = "set CLUSTER_ACCESS=relay in the function's .env (it asks for a token: callback)"
        results.append(Result(name, False, f"400: {said[:120]}", fix))
    elif status == 401:
        fix = "the function's WEB_SECRET and the forwarder's Secret must be the same"
        results.append(Result(name, False, f"401: {said[:120]}", fix))
    else:
        fix = "set CLUSTER_ACCESS=relay in the function's .env and deploy it again"
        results.append(Result(name, False, f"{status} without the state", fix))
    data = json.dumps({"state": EMPTY_STATE}).encode()
    status, body = _post(url, signed, data)
    name = "function reaches DigitalOcean"
    if status == 200:
        seen = body.get("observed", {})
        results.append(
            Result(name, True, f"a dry-run resync saw {seen.get('reserved_ips')} reserved IP(s)")
        )
    else:
        error = str(body.get("error") or body.get("errors") or body)[:300]
        results.append(Result(name, False, f"{status}: {error}", "read the error; see its .env"))
    return results


# --- the command -------------------------------------------------------------------------------


def diagnose(
    kube: Kubectl, do: DigitalOcean, namespace: str, web_secret: str = "", function_url: str = ""
) -> list[Result]:
    setup, install = read_setup(kube, namespace, web_secret)
    setup.function_url = function_url or setup.function_url
    if not install.ok:
        return [install]
    results = [install, *check_token(do, setup.cluster_id), *check_ips(do, setup)]
    for check in (
        check_external_ips,
        check_annotator,
        check_datapath,
        check_forwarder,
        check_node_events,
        check_function_token,
    ):
        try:
            results += check(kube, setup)
        except Unavailable as error:
            results.append(
                Result(check.__name__[6:], False, str(error), "check your kubeconfig and rights")
            )
    return results + check_function(setup)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="floating-ip", help="where the forwarder runs")
    parser.add_argument("--kubeconfig", help="passed to kubectl")
    parser.add_argument("--context", help="passed to kubectl")
    parser.add_argument("--function-url", help="instead of the forwarder's FUNCTION_URL")
    args = parser.parse_args(argv)
    token = os.environ.get("DIGITALOCEAN_TOKEN", "")
    if not token:
        print("doctor: set DIGITALOCEAN_TOKEN (the token the function uses)", file=sys.stderr)
        return 2
    passed = [
        f"--{k}={v}" for k, v in (("kubeconfig", args.kubeconfig), ("context", args.context)) if v
    ]
    kube = Kubectl(os.environ.get("KUBECTL", "kubectl"), passed)
    do = DigitalOcean(token, os.environ.get("DIGITALOCEAN_API_URL") or DEFAULT_API)
    secret = os.environ.get("WEB_SECRET", "")
    results = diagnose(kube, do, args.namespace, secret, args.function_url or "")
    for result in results:
        print(result.line())
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} ok, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
