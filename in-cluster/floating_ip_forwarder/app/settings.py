"""The forwarder's settings, read from environment variables (pure: the mapping is passed in).

Every problem is collected and reported at once, each naming its variable, so a wrong
Deployment is fixed in one round.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from floating_ip_common import contract
from floating_ip_common.kube_access import SERVICE_ACCOUNT_DIR, KubeAccess

PLATFORM_RATE_LIMIT = 600
"""DigitalOcean Functions: invocations per minute per namespace."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_LOG_LEVELS = ("debug", "info", "warning", "error")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
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
    """``LEASE_NAME``."""
    cluster_access: str = "callback"
    """``CLUSTER_ACCESS``: ``callback`` (default): the function calls the cluster's API back
    with a 10-minute token sent with each event. ``relay``: it never does; each event carries
    the state it reads, and the forwarder makes the Kubernetes writes it answers with (the
    same setting on the function)."""
    function_account: str = "floating-ip-function"
    """``FUNCTION_SERVICE_ACCOUNT``: the function's ServiceAccount, in ``POD_NAMESPACE``. The
    forwarder mints a 10-minute token of it and sends it with each event."""
    function_ca_file: str | None = None
    """``FUNCTION_CA_FILE``: trust only this CA bundle for the function (else the system's)."""
    function_timeout: float = 60.0
    """``FUNCTION_TIMEOUT``: seconds to wait for the function's answer."""
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
    """``NODE_PROBES``: ``on`` (default) or ``off``. Off, the leader connects to no pod and
    suspects nodes by their kubelet Lease alone (for clusters whose NetworkPolicies keep the
    forwarder out)."""
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
    lease_name = read.text("LEASE_NAME", "event-forwarder")
    function_account = read.text("FUNCTION_SERVICE_ACCOUNT", contract.FUNCTION_ACCOUNT)
    cluster_access = read.text("CLUSTER_ACCESS", "callback").lower()
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
    quiet = read.duration("QUIET_WINDOW", 0.5, 0.0)
    max_delay = read.duration("MAX_DELAY", max(2.0, quiet), 0.0)
    if max_delay < quiet:
        read.problems.append("MAX_DELAY must not be shorter than QUIET_WINDOW")
    namespaces = tuple(n.strip() for n in read.text("NAMESPACES").split(",") if n.strip())
    read.problems += [
        f"NAMESPACES: {n!r} is not a namespace name" for n in namespaces if not _DNS_LABEL.match(n)
    ]
    log_level = read.text("LOG_LEVEL", "info").lower()
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
        function_timeout=read.duration("FUNCTION_TIMEOUT", 60.0, 1.0),
        resync_period=read.duration("RESYNC_PERIOD", 300.0, 10.0),
        quiet_window=quiet,
        max_delay=max_delay,
        rate_per_minute=read.number("RATE_LIMIT", 60.0, 1.0, PLATFORM_RATE_LIMIT / 2),
        burst=read.integer("RATE_BURST", 10, 1, 100),
        resync_threshold=read.integer("RESYNC_THRESHOLD", 10, 1, 100_000),
        max_in_flight=read.integer("MAX_IN_FLIGHT", 4, 1, 64),
        namespaces=tuple(dict.fromkeys(namespaces)),
        http_port=read.integer("METRICS_PORT", 8080, 1, 65535),
        log_level=log_level,
        node_probes=read.switch("NODE_PROBES", default=True),
        probe_period=read.duration("PROBE_PERIOD", 1.0, 0.1),
        probe_timeout=read.duration("PROBE_TIMEOUT", 0.5, 0.05),
        probe_failures=read.integer("PROBE_FAILURES", 2, 1, 100),
        node_lease_stale=read.duration("NODE_LEASE_STALE_AFTER", 20.0, 1.0),
        hold_down=read.duration("SUSPICION_HOLD_DOWN", 30.0, 0.0),
    )
    if read.problems:
        raise ForwarderConfigError(read.problems)
    return settings


def _header_safe(text: str) -> bool:
    """Printable ASCII without spaces: safe in a header or a log line as it is."""
    return all(0x21 <= ord(char) <= 0x7E for char in text)


def _check_url(name: str, url: str, problems: list[str]) -> None:
    """An https URL that can be requested as given; the secret never goes elsewhere."""
    if not url.isprintable() or any(char.isspace() for char in url):
        problems.append(f"{name}: {url[:200]!r} contains whitespace or control characters")
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        problems.append(f"{name}: not a URL ({error})")
        return
    if parts.scheme != "https" or not parts.hostname:
        problems.append(f"{name} must be an https:// URL (the secret travels with it)")
    if parts.username or parts.password:
        problems.append(f"{name} must not carry credentials; they come from their own settings")


def _check_function_url(url: str, problems: list[str]) -> None:
    _check_url("FUNCTION_URL", url, problems)


def _check_service(host: str, port: str, problems: list[str]) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            problems.append(
                f"KUBERNETES_SERVICE_HOST: {host[:200]!r} is not an IP address or host name"
            )
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        problems.append(f"KUBERNETES_SERVICE_PORT: {port[:200]!r} is not a port (1-65535)")


def _kube_access(read: _Reader, is_file: Callable[[str], bool]) -> KubeAccess:
    api_url = read.text("KUBE_API_URL")
    if not api_url:
        host, port = read.text("KUBERNETES_SERVICE_HOST"), read.text("KUBERNETES_SERVICE_PORT")
        if host and port:
            _check_service(host, port, read.problems)
            api_url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        else:
            read.problems.append(
                "KUBE_API_URL is not set and this is not a pod (no KUBERNETES_SERVICE_HOST):"
                " set KUBE_API_URL, KUBE_TOKEN_FILE and KUBE_CA_FILE"
            )
    else:
        _check_url("KUBE_API_URL", api_url, read.problems)
    token_file = read.text("KUBE_TOKEN_FILE", f"{SERVICE_ACCOUNT_DIR}/token")
    read.file("KUBE_TOKEN_FILE", token_file, is_file)
    ca_file = read.text("KUBE_CA_FILE")
    if not ca_file and not read.text("KUBE_API_URL"):
        ca_file = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    read.file("KUBE_CA_FILE", ca_file, is_file)
    return KubeAccess(api_url.rstrip("/"), token_file, ca_file or None)
