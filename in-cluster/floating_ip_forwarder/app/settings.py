"""The forwarder's settings, read from environment variables (pure: the mapping is passed in).

Every problem is collected and reported at once, each naming its variable, so a wrong
Deployment is fixed in one round.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from floating_ip_common import contract
from floating_ip_common.kube_access import (
    ACCESS_VARIABLES,
    KubeAccess,
    https_url_problems,
    locate,
)

PLATFORM_RATE_LIMIT = 600
"""DigitalOcean Functions: invocations per minute per namespace."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_DURATION = 7 * 24 * 3600.0
"""Longer is a typo (and past ``threading.TIMEOUT_MAX`` a wait raises)."""


class ForwarderConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ForwarderSettings:
    function_url: str
    """``FUNCTION_URL``: the function's web URL (HTTPS)."""
    web_secret: str = field(repr=False)
    """``WEB_SECRET``: the function's ``webSecure`` secret (from a Secret; never logged)."""
    cluster_id: str
    """``CLUSTER_ID``: sent with every event (``ce-clusterid``)."""
    kube: KubeAccess
    lease_namespace: str
    """``POD_NAMESPACE``: where the election Lease lives (the Deployment's namespace)."""
    identity: str
    """``POD_NAME`` (else ``HOSTNAME``): this replica's name in the Lease."""
    lease_name: str = "event-forwarder"
    """``LEASE_NAME``: the election Lease, in ``POD_NAMESPACE``."""
    cluster_access: str = "callback"
    """``CLUSTER_ACCESS``: ``callback`` (default): the function calls the cluster's API back
    with a 10-minute token sent with each event. ``relay``: it never does; each event carries
    the state it reads, and the forwarder makes the Kubernetes writes it answers with (the
    same setting on the function)."""
    function_account: str = contract.FUNCTION_ACCOUNT
    """``FUNCTION_SERVICE_ACCOUNT``: the function's ServiceAccount, in ``POD_NAMESPACE``. The
    forwarder mints a 10-minute token of it and sends it with each event."""
    function_ca_file: str | None = None
    """``FUNCTION_CA_FILE``: trust only this CA bundle for the function (else the system's)."""
    function_timeout: float = 60.0
    """``FUNCTION_TIMEOUT``: how long to wait for the function's answer."""
    resync_period: float = 300.0
    """``RESYNC_PERIOD``: a resync event at start and then this often."""
    quiet_window: float = 0.5
    """``QUIET_WINDOW``: a Service's event leaves once no change came for this long..."""
    max_delay: float = 2.0
    """``MAX_DELAY``: ...but never later than this after its first change."""
    rate_per_minute: float = 60.0
    """``RATE_LIMIT``: events per minute at most, for all Services together."""
    burst: int = 10
    """``RATE_BURST``: events that may leave at once before ``RATE_LIMIT`` applies."""
    resync_threshold: int = 10
    """``RESYNC_THRESHOLD``: when this many Services are due at once, send one resync."""
    max_in_flight: int = 4
    """``MAX_IN_FLIGHT``: POSTs in flight at once (one per Service at most)."""
    namespaces: tuple[str, ...] = ()
    """``NAMESPACES``: comma-separated; empty watches Services, EndpointSlices and Pods in
    every namespace (Nodes are always watched)."""
    http_port: int = 8080
    """``METRICS_PORT``: serves ``/metrics``, ``/healthz`` and ``/readyz``."""
    log_level: str = "info"
    """``LOG_LEVEL``: debug, info, warning or error."""
    node_probes: bool = True
    """``NODE_PROBES``: off, the leader connects to no pod and suspects nodes by their kubelet
    Lease alone (for clusters whose NetworkPolicies keep the forwarder out)."""
    probe_period: float = 1.0
    """``PROBE_PERIOD``: the leader probes every ready endpoint of the opted-in Services this
    often (TCP connect to podIP:port)."""
    probe_timeout: float = 0.5
    """``PROBE_TIMEOUT``: a connect not accepted within this counts as failed."""
    probe_failures: int = 2
    """``PROBE_FAILURES``: consecutive rounds in which every endpoint on a node failed before
    the node is suspected."""
    node_lease_stale: float = 20.0
    """``NODE_LEASE_STALE_AFTER``: a node whose kubelet Lease did not change for this long (on
    this process's clock) is suspected: the only signal for UDP-only Services."""
    hold_down: float = 30.0
    """``SUSPICION_HOLD_DOWN``: a suspected node is cleared only after looking healthy this
    long without a break."""
    node_name: str = ""
    """``NODE_NAME``: the node this replica runs on (the Deployment sets it from
    ``spec.nodeName``): its own endpoints do not show that it reaches the other nodes, and a
    replica on the same node is no second vantage point. Empty: unknown."""
    confirm_wait: float = 3.0
    """``CONFIRM_WAIT``: how long the leader waits for another replica to confirm a node its
    probes find dead; with no answer by then (one replica, or the other replica's node is
    down too) it judges alone, and only if its own node reached another node's endpoint in
    the same round. The replicas refresh their observations a third of this apart during an
    incident."""


_T = TypeVar("_T")


def _default(name: str, kind: type[_T]) -> _T:
    """The dataclass's default of field ``name``: each default is written once, there (the
    parser, the installs' tests and the generated settings docs read it from there)."""
    value = _FIELDS[name].default
    if not isinstance(value, kind):
        raise TypeError(f"ForwarderSettings.{name} has no {kind.__name__} default")
    return value


_FIELDS = {f.name: f for f in fields(ForwarderSettings)}


def parse_duration(text: str) -> float:
    """``"0.5"``, ``"500ms"``, ``"2s"``, ``"5m"``, ``"1h"`` → seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text[:50]!r} is not a duration (like 500ms, 2s, 5m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Reader:
    """Reads variables from ``env``, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, "").strip() or default

    def required(self, name: str, why: str) -> str:
        value = self.text(name)
        if not value:
            self.problems.append(f"{name} is not set: {why}")
        return value

    def duration(self, name: str, default: float, minimum: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = parse_duration(raw)
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return default
        if value < minimum:
            self.problems.append(f"{name}: {raw[:50]} is below the minimum of {minimum:g}s")
        if value > MAX_DURATION:
            self.problems.append(f"{name}: {raw[:50]} is above the maximum of 7 days")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}: {raw[:50]!r} is not a number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}: {raw[:50]} is outside {low:g}..{high:g}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit()):
            self.problems.append(f"{name}: {raw[:50]!r} is not a whole number")
            return default
        # int() of thousands of digits raises (and is out of range anyway).
        value = int(raw) if len(raw) <= len(str(high)) else high + 1
        if not low <= value <= high:
            self.problems.append(f"{name}: {raw[:50]} is outside {low}..{high}")
            return default
        return value

    def switch(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("on", "true", "yes", "1"):
            return True
        if raw in ("off", "false", "no", "0"):
            return False
        self.problems.append(f"{name}: {raw!r} is not on or off")
        return default

    def file(self, name: str, path: str, is_file: Callable[[str], bool]) -> None:
        if path and not is_file(path):
            self.problems.append(f"{name}: no readable file at {path}")


def _default_is_file(path: str) -> bool:
    return Path(path).is_file()


def from_env(
    env: Mapping[str, str], is_file: Callable[[str], bool] = _default_is_file
) -> ForwarderSettings:
    read = _Reader(env)
    function_url = read.required("FUNCTION_URL", "the reconcile function's web URL")
    if function_url:
        _check_function_url(function_url, read.problems)
    secret = read.required("WEB_SECRET", "the function's webSecure secret (from the Secret)")
    if secret and not _header_safe(secret):
        # Not quoted: it is a secret. It travels in a header, where a line break would
        # make http.client raise with the header, secret included, in the message.
        read.problems.append(
            "WEB_SECRET contains spaces, line breaks, control or non-ASCII characters"
        )
    cluster_id = read.required("CLUSTER_ID", "the DOKS cluster's id")
    if cluster_id and not _CLUSTER_ID.match(cluster_id):
        read.problems.append(f"CLUSTER_ID: {cluster_id!r} is not an id (letters, digits, -._)")
    kube = _kube_access(read, is_file)
    lease_namespace = read.required(
        "POD_NAMESPACE", "the Lease's namespace (the Deployment sets it from metadata.namespace)"
    )
    identity = read.text("POD_NAME") or read.text("HOSTNAME")
    if not identity:
        read.problems.append("POD_NAME is not set (nor HOSTNAME): this replica's Lease identity")
    elif not _header_safe(identity) or len(identity) > 253:
        read.problems.append(
            f"POD_NAME: {identity[:80]!r} is not a Lease identity "
            "(at most 253 printable characters, no spaces)"
        )
    node_name = read.text("NODE_NAME", _default("node_name", str))
    if node_name and not _DNS_SUBDOMAIN.match(node_name):
        read.problems.append(f"NODE_NAME: {node_name[:80]!r} is not a valid Kubernetes name")
    lease_name = read.text("LEASE_NAME", _default("lease_name", str))
    function_account = read.text("FUNCTION_SERVICE_ACCOUNT", _default("function_account", str))
    cluster_access = read.text("CLUSTER_ACCESS", _default("cluster_access", str)).lower()
    if cluster_access not in ("callback", "relay"):
        read.problems.append(f"CLUSTER_ACCESS: {cluster_access[:40]!r} is not callback or relay")
    for name, value in (
        ("POD_NAMESPACE", lease_namespace),
        ("LEASE_NAME", lease_name),
        ("FUNCTION_SERVICE_ACCOUNT", function_account),
    ):
        if value and not _DNS_SUBDOMAIN.match(value):
            read.problems.append(f"{name}: {value!r} is not a valid Kubernetes name")
    function_ca_file = read.text("FUNCTION_CA_FILE") or None
    read.file("FUNCTION_CA_FILE", function_ca_file or "", is_file)
    quiet = read.duration("QUIET_WINDOW", _default("quiet_window", float), 0.0)
    max_delay = read.duration("MAX_DELAY", max(_default("max_delay", float), quiet), 0.0)
    if max_delay < quiet:
        read.problems.append("MAX_DELAY must not be shorter than QUIET_WINDOW")
    namespaces = tuple(n.strip() for n in read.text("NAMESPACES").split(",") if n.strip())
    read.problems += [
        f"NAMESPACES: {n!r} is not a namespace name" for n in namespaces if not _DNS_LABEL.match(n)
    ]
    log_level = read.text("LOG_LEVEL", _default("log_level", str)).lower()
    if log_level not in _LOG_LEVELS:
        read.problems.append(f"LOG_LEVEL: {log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
    settings = ForwarderSettings(
        function_url=function_url,
        web_secret=secret,
        cluster_id=cluster_id,
        kube=kube,
        lease_namespace=lease_namespace,
        identity=identity,
        lease_name=lease_name,
        function_account=function_account,
        cluster_access=cluster_access,
        function_ca_file=function_ca_file,
        function_timeout=read.duration(
            "FUNCTION_TIMEOUT", _default("function_timeout", float), 1.0
        ),
        resync_period=read.duration("RESYNC_PERIOD", _default("resync_period", float), 10.0),
        quiet_window=quiet,
        max_delay=max_delay,
        rate_per_minute=read.number(
            "RATE_LIMIT", _default("rate_per_minute", float), 1.0, PLATFORM_RATE_LIMIT / 2
        ),
        burst=read.integer("RATE_BURST", _default("burst", int), 1, 100),
        resync_threshold=read.integer(
            "RESYNC_THRESHOLD", _default("resync_threshold", int), 1, 100_000
        ),
        max_in_flight=read.integer("MAX_IN_FLIGHT", _default("max_in_flight", int), 1, 64),
        namespaces=tuple(dict.fromkeys(namespaces)),
        http_port=read.integer("METRICS_PORT", _default("http_port", int), 1, 65535),
        log_level=log_level,
        node_probes=read.switch("NODE_PROBES", _default("node_probes", bool)),
        probe_period=read.duration("PROBE_PERIOD", _default("probe_period", float), 0.1),
        probe_timeout=read.duration("PROBE_TIMEOUT", _default("probe_timeout", float), 0.05),
        probe_failures=read.integer("PROBE_FAILURES", _default("probe_failures", int), 1, 100),
        node_lease_stale=read.duration(
            "NODE_LEASE_STALE_AFTER", _default("node_lease_stale", float), 1.0
        ),
        hold_down=read.duration("SUSPICION_HOLD_DOWN", _default("hold_down", float), 0.0),
        node_name=node_name,
        confirm_wait=read.duration("CONFIRM_WAIT", _default("confirm_wait", float), 0.0),
    )
    if read.problems:
        raise ForwarderConfigError(read.problems)
    return settings


def _header_safe(text: str) -> bool:
    """Printable ASCII without spaces: safe in a header or a log line as it is."""
    return all(0x21 <= ord(char) <= 0x7E for char in text)


def _check_function_url(url: str, problems: list[str]) -> None:
    problems += https_url_problems("FUNCTION_URL", url)


def _kube_access(read: _Reader, is_file: Callable[[str], bool]) -> KubeAccess:
    access, problems = locate({name: read.text(name) for name in ACCESS_VARIABLES})
    read.problems += problems
    read.file("KUBE_TOKEN_FILE", access.token_file, is_file)
    read.file("KUBE_CA_FILE", access.ca_file or "", is_file)
    return access
