"""Configuration from the environment: defaults, and a clear message for each mistake."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from floating_ip_common.kube_access import SERVICE_ACCOUNT_DIR, KubeAccess
from floating_ip_common.kube_client import KubeClient
from floating_ip_forwarder.app.settings import (
    ForwarderConfigError,
    ForwarderSettings,
    from_env,
    parse_duration,
)
from testbed.layout import REPO

IN_POD = {
    "FUNCTION_URL": "https://faas-nyc1-1.doserverless.co/api/v1/web/fn-1/floating-ip/reconcile",
    "WEB_SECRET": "s3cret-value",
    "CLUSTER_ID": "0f1e2d3c-aaaa-bbbb-cccc-000000000001",
    "KUBERNETES_SERVICE_HOST": "10.245.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "POD_NAMESPACE": "floating-ip",
    "POD_NAME": "event-forwarder-abc",
}


def files_exist(_path: str) -> bool:
    return True


def no_files(_path: str) -> bool:
    return False


def settings(**changes: str) -> ForwarderSettings:
    return from_env({**IN_POD, **changes}, files_exist)


def problems(env: dict[str, str], is_file: Callable[[str], bool] = files_exist) -> list[str]:
    with pytest.raises(ForwarderConfigError) as error:
        from_env(env, is_file)
    return error.value.problems


def test_defaults_in_a_pod() -> None:
    s = settings()
    assert s.kube == KubeAccess(
        "https://10.245.0.1:443", f"{SERVICE_ACCOUNT_DIR}/token", f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    )
    assert (s.quiet_window, s.max_delay, s.resync_period) == (0.5, 2.0, 300.0)
    assert (s.rate_per_minute, s.burst, s.max_in_flight) == (60.0, 10, 4)
    assert (s.namespaces, s.lease_name, s.identity) == (
        (),
        "event-forwarder",
        "event-forwarder-abc",
    )
    assert (s.http_port, s.log_level, s.function_ca_file) == (8080, "info", None)


def test_callback_by_default_relay_when_asked() -> None:
    assert (settings().cluster_access, settings().function_account) == (
        "callback",
        "floating-ip-function",
    )
    assert settings(CLUSTER_ACCESS="Relay").cluster_access == "relay"


def test_the_secret_never_shows_in_repr() -> None:
    assert "s3cret-value" not in repr(settings())


def test_out_of_cluster_overrides() -> None:
    env = {k: v for k, v in IN_POD.items() if not k.startswith("KUBERNETES_")}
    env |= {
        "KUBE_API_URL": "https://127.0.0.1:6443/",
        "KUBE_TOKEN_FILE": "/t",
        "KUBE_CA_FILE": "/c",
    }
    assert from_env(env, files_exist).kube == KubeAccess("https://127.0.0.1:6443", "/t", "/c")
    no_ca = {k: v for k, v in env.items() if k != "KUBE_CA_FILE"}
    assert from_env(no_ca, files_exist).kube.ca_file is None, "the system trust store"


def test_ipv6_service_host() -> None:
    assert settings(KUBERNETES_SERVICE_HOST="fd00::1").kube.api_url == "https://[fd00::1]:443"


def test_tunables() -> None:
    s = settings(
        QUIET_WINDOW="250ms",
        MAX_DELAY="5s",
        RESYNC_PERIOD="10m",
        RATE_LIMIT="120",
        RATE_BURST="5",
        RESYNC_THRESHOLD="20",
        MAX_IN_FLIGHT="2",
        NAMESPACES=" apps, web ,apps",
        METRICS_PORT="9090",
        LOG_LEVEL="DEBUG",
        FUNCTION_TIMEOUT="30",
        LEASE_NAME="fwd",
        FUNCTION_CA_FILE="/ca.pem",
    )
    assert (s.quiet_window, s.max_delay, s.resync_period) == (0.25, 5.0, 600.0)
    assert (s.rate_per_minute, s.burst, s.resync_threshold, s.max_in_flight) == (120.0, 5, 20, 2)
    assert s.namespaces == ("apps", "web")
    assert (s.http_port, s.log_level, s.function_timeout) == (9090, "debug", 30.0)
    assert (s.lease_name, s.function_ca_file) == ("fwd", "/ca.pem")


def test_node_death_detection_defaults_and_tunables() -> None:
    s = settings()
    assert (s.node_probes, s.probe_period, s.probe_timeout, s.probe_failures) == (
        True,
        1.0,
        0.5,
        2,
    )
    assert (s.node_lease_stale, s.hold_down) == (20.0, 30.0)
    s = settings(
        NODE_PROBES="off",
        PROBE_PERIOD="500ms",
        PROBE_TIMEOUT="300ms",
        PROBE_FAILURES="3",
        NODE_LEASE_STALE_AFTER="4s",
        SUSPICION_HOLD_DOWN="1m",
    )
    assert (s.node_probes, s.probe_period, s.probe_timeout, s.probe_failures) == (
        False,
        0.5,
        0.3,
        3,
    )
    assert (s.node_lease_stale, s.hold_down) == (4.0, 60.0)


def test_unset_variables_take_the_dataclass_defaults() -> None:
    """Each default is written once, in ForwarderSettings: the parser reads it from there."""
    s = settings()
    for field in dataclasses.fields(ForwarderSettings):
        if field.default is not dataclasses.MISSING:
            assert getattr(s, field.name) == field.default, field.name


def restated_by_the_installs() -> dict[str, dict[str, str]]:
    """The forwarder variables each install writes: the kustomize base's env file and the
    chart's values, through the ConfigMap template that maps them to variables."""
    base = {}
    for line in (REPO / "deploy/base/event-forwarder.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if line and not line.startswith("#") and value:
            base[name] = value
    chart = REPO / "charts/doks-floating-ip"
    values = yaml.safe_load((chart / "values.yaml").read_text())["forwarder"]
    template = (chart / "templates/settings.yaml").read_text()
    mapped = re.findall(
        r"^  ([A-Z_]+): \{\{ \.Values\.forwarder\.(\w+) \| quote \}\}", template, re.M
    )
    return {"base": base, "chart": {name: str(values[key]) for name, key in mapped}}


@pytest.mark.parametrize("install", ["base", "chart"])
def test_what_the_installs_write_is_the_code_default(install: str) -> None:
    """A value an install restates parses to the code's default, so the installs and the
    generated settings docs cannot drift apart."""
    written = restated_by_the_installs()[install]
    assert {"RESYNC_PERIOD", "QUIET_WINDOW", "MAX_DELAY", "RATE_LIMIT", "LOG_LEVEL"} <= set(written)
    defaults = settings()
    for name, value in written.items():
        assert settings(**{name: value}) == defaults, f"{install}: {name}={value}"


def test_hostname_is_the_fallback_identity() -> None:
    env = {k: v for k, v in IN_POD.items() if k != "POD_NAME"} | {"HOSTNAME": "host-1"}
    assert from_env(env, files_exist).identity == "host-1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"FUNCTION_URL": ""}, "FUNCTION_URL is not set"),
        ({"FUNCTION_URL": "http://example.com/fn"}, "FUNCTION_URL must be an https:// URL"),
        ({"FUNCTION_URL": "https://u:p@example.com/fn"}, "must not carry credentials"),
        ({"FUNCTION_URL": "https://example.com:99999/"}, "FUNCTION_URL: not a URL"),
        ({"WEB_SECRET": "  "}, "WEB_SECRET is not set"),
        ({"CLUSTER_ID": ""}, "CLUSTER_ID is not set"),
        ({"CLUSTER_ID": "my cluster"}, "CLUSTER_ID: 'my cluster' is not an id"),
        ({"POD_NAMESPACE": ""}, "POD_NAMESPACE is not set"),
        ({"POD_NAMESPACE": "Bad_NS"}, "POD_NAMESPACE: 'Bad_NS' is not a valid Kubernetes name"),
        ({"LEASE_NAME": "no/slash"}, "LEASE_NAME"),
        ({"QUIET_WINDOW": "fast"}, "QUIET_WINDOW: 'fast' is not a duration"),
        ({"QUIET_WINDOW": "3s", "MAX_DELAY": "1s"}, "MAX_DELAY must not be shorter"),
        ({"RESYNC_PERIOD": "1s"}, "RESYNC_PERIOD: 1s is below the minimum of 10s"),
        ({"RATE_LIMIT": "600"}, "RATE_LIMIT: 600 is outside 1..300"),
        ({"RATE_LIMIT": "many"}, "RATE_LIMIT: 'many' is not a number"),
        ({"RATE_BURST": "0"}, "RATE_BURST: 0 is outside 1..100"),
        ({"MAX_IN_FLIGHT": "two"}, "MAX_IN_FLIGHT: 'two' is not a whole number"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT: 70000 is outside 1..65535"),
        ({"NAMESPACES": "apps,Bad"}, "NAMESPACES: 'Bad' is not a namespace name"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'loud' is not one of"),
        ({"KUBE_API_URL": "http://127.0.0.1:8080"}, "KUBE_API_URL must be an https:// URL"),
        ({"NODE_PROBES": "maybe"}, "NODE_PROBES: 'maybe' is not on or off"),
        ({"PROBE_PERIOD": "10ms"}, "PROBE_PERIOD: 10ms is below the minimum of 0.1s"),
        ({"PROBE_FAILURES": "0"}, "PROBE_FAILURES: 0 is outside 1..100"),
        ({"NODE_LEASE_STALE_AFTER": "soon"}, "NODE_LEASE_STALE_AFTER: 'soon' is not a duration"),
        ({"CLUSTER_ACCESS": "tunnel"}, "CLUSTER_ACCESS: 'tunnel' is not callback or relay"),
        ({"FUNCTION_SERVICE_ACCOUNT": "Fn_1"}, "FUNCTION_SERVICE_ACCOUNT: 'Fn_1' is not a valid"),
    ],
)
def test_each_mistake_names_its_variable(changes: dict[str, str], expected: str) -> None:
    found = problems({**IN_POD, **changes})
    assert any(expected in p for p in found), found


def test_outside_a_pod_without_overrides() -> None:
    env = {k: v for k, v in IN_POD.items() if not k.startswith("KUBERNETES_")}
    assert any("KUBE_API_URL is not set and this is not a pod" in p for p in problems(env))


def test_missing_files_are_named() -> None:
    found = problems({**IN_POD, "FUNCTION_CA_FILE": "/nowhere/ca.pem"}, no_files)
    assert f"KUBE_TOKEN_FILE: no readable file at {SERVICE_ACCOUNT_DIR}/token" in found
    assert f"KUBE_CA_FILE: no readable file at {SERVICE_ACCOUNT_DIR}/ca.crt" in found
    assert "FUNCTION_CA_FILE: no readable file at /nowhere/ca.pem" in found


def test_all_problems_are_reported_at_once() -> None:
    found = problems({"QUIET_WINDOW": "x"})
    assert len(found) >= 6
    assert str(ForwarderConfigError(found)).startswith("invalid configuration:")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0.5", 0.5), ("500ms", 0.5), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), ("0", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1s", "1d", "s", "1.s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- hostile values: refused before anything starts, naming the variable, quoting no secret --


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"KUBERNETES_SERVICE_PORT": "https"}, "KUBERNETES_SERVICE_PORT: 'https' is not a port"),
        ({"KUBERNETES_SERVICE_PORT": "99999"}, "KUBERNETES_SERVICE_PORT: '99999' is not a port"),
        ({"KUBERNETES_SERVICE_PORT": "٤٤٣"}, "is not a port"),
        ({"KUBERNETES_SERVICE_HOST": "10.245.0.1/evil?"}, "KUBERNETES_SERVICE_HOST: '10.245"),
        ({"KUBERNETES_SERVICE_HOST": "h\r\nX-Injected: 1"}, "is not an IP address or host name"),
        ({"KUBERNETES_SERVICE_HOST": "user@10.245.0.1"}, "is not an IP address or host name"),
        ({"KUBE_API_URL": "https://127.0.0.1:notaport"}, "KUBE_API_URL: not a URL"),
        ({"KUBE_API_URL": "https://u:p@127.0.0.1:6443"}, "KUBE_API_URL must not carry credentials"),
        (
            {"KUBE_API_URL": "https://127.0.0.1:6443/\nX: y"},
            "KUBE_API_URL: 'https://127.0.0.1:6443/",
        ),
        ({"KUBE_API_URL": "https://"}, "KUBE_API_URL must be an https:// URL"),
        ({"FUNCTION_URL": "https://example.com/fn\r\nX-Injected: 1"}, "control characters"),
        ({"FUNCTION_URL": "https://exa mple.com/fn"}, "FUNCTION_URL: 'https://exa mple.com/fn'"),
        ({"WEB_SECRET": "s3cret\r\nX-Injected: 1"}, "WEB_SECRET contains spaces, line breaks"),
        ({"WEB_SECRET": "two words"}, "WEB_SECRET contains spaces"),
        ({"WEB_SECRET": "sécret"}, "non-ASCII characters"),
        ({"POD_NAME": "fwd-0\nlease acquired by fwd-1"}, "POD_NAME: 'fwd-0\\nlease"),
        ({"POD_NAME": "x" * 300}, "is not a Lease identity"),
        ({"POD_NAMESPACE": "../kube-system"}, "POD_NAMESPACE: '../kube-system' is not a valid"),
        ({"LEASE_NAME": "fwd%2F..%2Fx"}, "LEASE_NAME: 'fwd%2F..%2Fx' is not a valid"),
        ({"NAMESPACES": "apps,../kube-system"}, "NAMESPACES: '../kube-system' is not a namespace"),
        ({"NAMESPACES": "apps,we\nb"}, "NAMESPACES: 'we\\nb' is not a namespace name"),
        ({"CLUSTER_ID": "c1/../../x"}, "CLUSTER_ID: 'c1/../../x' is not an id"),
        ({"RESYNC_PERIOD": "999999999999h"}, "RESYNC_PERIOD: 999999999999h is above the maximum"),
        ({"SUSPICION_HOLD_DOWN": "200h"}, "SUSPICION_HOLD_DOWN: 200h is above the maximum of 7"),
        ({"FUNCTION_TIMEOUT": "1e400"}, "FUNCTION_TIMEOUT: '1e400' is not a duration"),
        ({"QUIET_WINDOW": "-1s"}, "QUIET_WINDOW: '-1s' is not a duration"),
        ({"RATE_LIMIT": "nan"}, "RATE_LIMIT: nan is outside 1..300"),
        ({"RATE_LIMIT": "inf"}, "RATE_LIMIT: inf is outside 1..300"),
        ({"METRICS_PORT": "٣"}, "METRICS_PORT: '٣' is not a whole number"),
        ({"RATE_BURST": "9" * 5000}, "RATE_BURST: " + "9" * 50),
        ({"RESYNC_PERIOD": "9" * 5000 + "s"}, "RESYNC_PERIOD: " + "9" * 50 + " is above"),
        ({"LOG_LEVEL": "info\nERROR fake"}, "LOG_LEVEL: 'info\\nerror fake' is not one of"),
    ],
)
def test_a_hostile_value_is_refused_naming_its_variable(
    changes: dict[str, str], expected: str
) -> None:
    found = problems({**IN_POD, **changes})
    assert any(expected in p for p in found), found
    assert not any("s3cret" in p for p in found), "the secret is never quoted"
    assert all(len(p) < 400 for p in found), "a huge value is quoted cut short"


@pytest.mark.parametrize(
    "content",
    [b"tok-SECRET\r\nX-Injected: 1", b"tok-SECRET other", b"\xfftok-SECRET", b"\n"],
)
def test_a_bad_token_file_is_named_without_quoting_the_token(
    tmp_path: Path, content: bytes
) -> None:
    """Read again for every connection; a line break would otherwise make http.client
    raise with the Authorization header, token included, into the watcher's log line."""
    token = tmp_path / "token"
    token.write_bytes(content)
    client = KubeClient(KubeAccess("https://127.0.0.1:6443", str(token), None))
    with pytest.raises(ValueError, match=r"is empty|contains bytes a token never has") as refused:
        client.headers("application/json")
    assert "tok-SECRET" not in str(refused.value)
    assert str(token) in str(refused.value)
    token.write_bytes(b"tok-good\n")
    assert client.headers("application/json")[0]["Authorization"] == "Bearer tok-good"
