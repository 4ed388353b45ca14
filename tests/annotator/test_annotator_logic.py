"""The annotator's decisions without a network: what it accepts from the metadata service,
what it writes, when it retries, and how it is configured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from floating_ip_annotator import cli, kube, metadata
from floating_ip_annotator.errors import (
    AnnotatorConfigError,
    ExitCode,
    IdentityMismatch,
    KubeRejected,
    MetadataInvalid,
    PermissionDenied,
    Transient,
)
from floating_ip_annotator.identity import DropletIdentity, parse_anchor_ipv4, parse_droplet_id
from floating_ip_annotator.kube import Target
from floating_ip_annotator.plan import annotation_patch, check_node_droplet, desired_annotations
from floating_ip_annotator.retry import GaveUp, RetryPolicy, with_retries
from floating_ip_common.contract import ANCHOR_IPV4, DROPLET_ID
from floating_ip_common.deadline import Deadline
from floating_ip_common.kube_client import ApiError
from floating_ip_common.kube_errors import status_message

SOURCE = "http://169.254.169.254/metadata/v1/interfaces/public/0/anchor_ipv4/address"
IDENTITY = DropletIdentity(droplet_id=3164494, anchor_ipv4="10.17.0.5")

# --- what the metadata service may answer ----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("10.17.0.5", "10.17.0.5"),
        ("10.17.0.5\n", "10.17.0.5"),
        ("  10.17.0.5  ", "10.17.0.5"),
        ("192.0.2.1", "192.0.2.1"),  # any non-public unicast IPv4 is accepted, not only 10.x
    ],
)
def test_an_ipv4_anchor_is_accepted(answer: str, expected: str) -> None:
    assert parse_anchor_ipv4(answer, SOURCE) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "an empty body"),
        ("  \n", "an empty body"),
        ("not-an-ip", "'not-an-ip' for anchor_ipv4 (" + SOURCE + "): not an IPv4 address"),
        ("10.17.0", "not an IPv4 address"),
        ("10.017.0.5", "not an IPv4 address"),  # leading zeros are ambiguous (octal?)
        ("10.17.0.5\n10.17.0.6", "not an IPv4 address"),
        ("2604:a880:800:10::1", "an IPv6 address, the anchor must be IPv4"),
        ("0.0.0.0", "not a unicast address"),
        ("127.0.0.1", "not a unicast address"),
        ("224.0.0.1", "not a unicast address"),
        ("255.255.255.255", "not a unicast address"),
        ("164.90.155.12", "a public address; the anchor is private"),
        ("169.254.169.254", "a link-local address"),
    ],
)
def test_anything_but_a_unicast_ipv4_anchor_is_refused(answer: str, reason: str) -> None:
    with pytest.raises(MetadataInvalid, match="anchor_ipv4") as refused:
        parse_anchor_ipv4(answer, SOURCE)
    assert reason in str(refused.value)


def test_a_long_answer_is_cut_short_in_the_message() -> None:
    page = "<html>" + "x" * 5000 + "</html>"
    with pytest.raises(MetadataInvalid) as refused:
        parse_anchor_ipv4(page, SOURCE)
    assert len(str(refused.value)) < 300
    assert "(5013 characters)" in str(refused.value)


@pytest.mark.parametrize(("answer", "expected"), [("3164494", 3164494), ("1\n", 1)])
def test_a_positive_integer_is_a_droplet_id(answer: str, expected: int) -> None:
    assert parse_droplet_id(answer, "http://x/metadata/v1/id") == expected


@pytest.mark.parametrize("answer", ["", "0", "-5", "12a", "1.5", "0123", "٣", "1" * 20])
def test_anything_else_is_not_a_droplet_id(answer: str) -> None:
    with pytest.raises(MetadataInvalid, match="not a positive integer"):
        parse_droplet_id(answer, "http://x/metadata/v1/id")


# --- what gets written -------------------------------------------------------------------------


def test_the_annotation_names_come_from_the_contract() -> None:
    assert desired_annotations(IDENTITY) == {ANCHOR_IPV4: "10.17.0.5", DROPLET_ID: "3164494"}
    assert ANCHOR_IPV4 == "floating-ip.doks.dev/anchor-ipv4"


@pytest.mark.parametrize(
    ("current", "expected_annotations"),
    [
        (None, {ANCHOR_IPV4: "10.17.0.5", DROPLET_ID: "3164494"}),
        ({"other": "kept"}, {ANCHOR_IPV4: "10.17.0.5", DROPLET_ID: "3164494"}),
        ({ANCHOR_IPV4: "10.17.0.9", DROPLET_ID: "3164494"}, {ANCHOR_IPV4: "10.17.0.5"}),
        ({ANCHOR_IPV4: "10.17.0.5"}, {DROPLET_ID: "3164494"}),
        ({ANCHOR_IPV4: "10.17.0.5", DROPLET_ID: "3164494", "other": "x"}, None),
    ],
)
def test_only_differing_annotations_are_patched(
    current: dict[str, str] | None, expected_annotations: dict[str, str] | None
) -> None:
    patch = annotation_patch(current, desired_annotations(IDENTITY), "4711")
    if expected_annotations is None:
        assert patch is None
    else:
        # Conditional on the version read, and never touching other annotations.
        assert patch == {
            "metadata": {"resourceVersion": "4711", "annotations": expected_annotations}
        }


@pytest.mark.parametrize(
    "provider_id", [None, "", "digitalocean://3164494", "kind://docker/kind/node"]
)
def test_a_node_of_this_droplet_or_of_unknown_origin_may_be_annotated(
    provider_id: str | None,
) -> None:
    check_node_droplet("pool-a", provider_id, IDENTITY)


def test_a_node_of_another_droplet_is_refused() -> None:
    with pytest.raises(IdentityMismatch, match=r"providerID 'digitalocean://42'.*droplet 3164494"):
        check_node_droplet("pool-a", "digitalocean://42", IDENTITY)


# --- retries -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(
    failures: int, clock: FakeClock, timeouts: list[float], cost: float = 0.0
) -> Callable[[float], str]:
    """A call that fails transiently ``failures`` times, each attempt costing ``cost`` s."""

    def call(timeout: float) -> str:
        timeouts.append(timeout)
        clock.now += cost
        if len(timeouts) <= failures:
            raise Transient(f"failure {len(timeouts)}")
        return "done"

    return call


def test_transient_failures_are_retried_with_doubling_backoff() -> None:
    clock, timeouts = FakeClock(), list[float]()
    policy = RetryPolicy(attempts=5, request_timeout=5.0, first_delay=0.5, max_delay=1.5)
    result = with_retries(
        flaky(3, clock, timeouts), policy=policy, deadline=Deadline(30, clock), sleep=clock.sleep
    )
    assert result == "done"
    assert clock.slept == [0.5, 1.0, 1.5]
    assert timeouts == [5.0, 5.0, 5.0, 5.0]


def test_the_attempts_are_bounded() -> None:
    clock, timeouts = FakeClock(), list[float]()
    with pytest.raises(GaveUp) as gave_up:
        with_retries(
            flaky(99, clock, timeouts),
            policy=RetryPolicy(attempts=3),
            deadline=Deadline(30, clock),
            sleep=clock.sleep,
        )
    assert (gave_up.value.attempts, gave_up.value.cause) == (3, "failure 3")
    assert gave_up.value.summary(30) == "3 attempts: failure 3"


def test_the_deadline_bounds_attempts_and_each_request() -> None:
    clock, timeouts = FakeClock(), list[float]()
    policy = RetryPolicy(attempts=10, request_timeout=5.0, first_delay=1.0, max_delay=1.0)
    with pytest.raises(GaveUp) as gave_up:
        with_retries(
            flaky(99, clock, timeouts, cost=2.0),
            policy=policy,
            deadline=Deadline(7.5, clock),
            sleep=clock.sleep,
        )
    # 0 s: 5 s left; 3 s: 4.5 s left; 6 s: 1.5 s left, then no time for the next backoff.
    assert timeouts == [5.0, 4.5, 1.5]
    assert gave_up.value.out_of_time
    assert gave_up.value.summary(7.5) == "3 attempts within the 7.5s timeout: failure 3"


def test_a_permanent_failure_is_not_retried() -> None:
    calls = []

    def call(timeout: float) -> None:
        calls.append(timeout)
        raise PermissionDenied("no")

    with pytest.raises(PermissionDenied):
        with_retries(call, policy=RetryPolicy(), deadline=Deadline(30), sleep=pytest.fail)
    assert len(calls) == 1


# --- the Kubernetes API's answers --------------------------------------------------------------

POD = Target("pod", "ingress-0", "web")
NODE = Target("node", "pool-a")


def test_targets_name_their_api_path() -> None:
    assert POD.path == "/api/v1/namespaces/web/pods/ingress-0"
    assert NODE.path == "/api/v1/nodes/pool-a"
    assert Target("pod", "a/b", "c").path == "/api/v1/namespaces/c/pods/a%2Fb"
    assert (str(POD), str(NODE)) == ("pod web/ingress-0", "node pool-a")


@pytest.mark.parametrize(
    ("status", "target", "error", "words"),
    [
        (401, POD, PermissionDenied, "rejected the ServiceAccount token (401) reading pod"),
        (403, POD, PermissionDenied, "floating-ip-annotator Role (get and patch pods)"),
        (403, NODE, PermissionDenied, "floating-ip-node-annotator ClusterRole"),
        (404, POD, KubeRejected, "pod web/ingress-0 not found (404): the message"),
        (422, POD, KubeRejected, "HTTP 422 reading pod web/ingress-0"),
        (409, POD, Transient, "HTTP 409"),
        (429, POD, Transient, "HTTP 429"),
        (500, POD, Transient, "HTTP 500"),
        (503, NODE, Transient, "HTTP 503 reading node pool-a"),
    ],
)
def test_statuses_map_to_retry_or_a_named_failure(
    status: int, target: Target, error: type[Exception], words: str
) -> None:
    body = b'{"kind": "Status", "message": "the message"}'
    failure = kube.failure(ApiError(status, status_message(body)), "GET", target)
    assert type(failure) is error
    assert words in str(failure)


def test_a_bad_ca_is_named_and_the_token_never_shown(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token-value\n")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(AnnotatorConfigError, match="cannot load the cluster CA") as refused:
        kube.in_cluster(environ, token, ca)
    assert "secret-token-value" not in str(refused.value)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"),
        ({"KUBERNETES_SERVICE_HOST": "10.245.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "token"),
    ],
)
def test_missing_in_cluster_configuration_is_named(
    tmp_path: Path, environ: dict[str, str], words: str
) -> None:
    with pytest.raises(AnnotatorConfigError, match=words):
        kube.in_cluster(environ, tmp_path / "token", tmp_path / "ca.crt")


# --- configuration -----------------------------------------------------------------------------


def test_exit_codes_are_distinct() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode.__members__)


@pytest.mark.parametrize(
    ("argv", "environ", "missing"),
    [
        ([], {"POD_NAMESPACE": "web"}, "POD_NAME is not set"),
        ([], {"POD_NAME": "ingress-0"}, "POD_NAMESPACE is not set"),
        (["--node"], {"POD_NAME": "a", "POD_NAMESPACE": "b"}, "NODE_NAME is not set"),
    ],
)
def test_missing_downward_api_variables_are_named(
    argv: list[str], environ: dict[str, str], missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv, environ) == ExitCode.CONFIG
    error = capsys.readouterr().err
    assert missing in error
    assert "fieldRef" in error


def test_the_metadata_url_comes_from_the_flag_then_the_environment() -> None:
    environ = {"POD_NAME": "p", "POD_NAMESPACE": "n"}
    args = cli.parser().parse_args([])
    assert cli.settings(args, environ).metadata_root == "http://169.254.169.254/"
    from_env = {**environ, "METADATA_URL": "http://127.0.0.1:9/droplets/7/"}
    assert cli.settings(args, from_env).metadata_root == "http://127.0.0.1:9/droplets/7/"
    flagged = cli.parser().parse_args(["--metadata-url", "http://10.0.0.1"])
    assert cli.settings(flagged, from_env).metadata_root == "http://10.0.0.1/"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "169.254.169.254", "http://"])
def test_a_metadata_url_must_be_http(url: str) -> None:
    with pytest.raises(AnnotatorConfigError, match="not an http"):
        metadata.check_url(url)


@pytest.mark.parametrize(
    "argv", [["--timeout", "0"], ["--timeout", "nan"], ["--attempts", "0"], ["--bogus"]]
)
def test_bad_flags_exit_with_the_configuration_code(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parser().parse_args(argv)
    assert exited.value.code == ExitCode.CONFIG
