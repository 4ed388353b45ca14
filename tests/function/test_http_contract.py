"""The HTTP contract, answered before any call to Kubernetes or DigitalOcean is made."""

from __future__ import annotations

import json
import logging

import pytest

from floating_ip.handler import Request, handle
from floating_ip_common import contract
from testbed.doks import WEB_SECRET
from testbed.function_harness import binary_event, resync

ENV = {
    "DIGITALOCEAN_TOKEN": "do-token-must-never-show",
    "CLUSTER_ID": "7b8d3a1e-6f0c-4c4e-9a55-2d0c7f1b9e11",
    "KUBE_API_URL": "https://127.0.0.1:9",  # nothing listens: no test below may get there
    "WEB_SECRET": WEB_SECRET,
}
KUBE_TOKEN = "kube-token-must-never-show"
"""What the forwarder sends with each event (the function holds no cluster token)."""


def call(
    headers: dict[str, str],
    body: bytes = b"{}",
    method: str = "POST",
    env: dict[str, str] | None = None,
    token: str | None = KUBE_TOKEN,
) -> tuple[int, dict[str, object]]:
    """``token``: sent as the forwarder sends it, unless ``None``."""
    sent = {contract.KUBE_TOKEN_HEADER: token, **headers} if token is not None else headers
    response = handle(Request(method, sent, body), env or ENV)
    return response.status, response.body


def test_a_missing_or_wrong_secret_is_401() -> None:
    headers, body = resync()
    del headers[contract.AUTH_HEADER]
    assert call(headers, body)[0] == 401
    assert call({**headers, contract.AUTH_HEADER: WEB_SECRET[:-1] + "x"}, body)[0] == 401
    assert call({**headers, contract.AUTH_HEADER: ""}, body)[0] == 401


def test_without_a_configured_secret_every_call_is_refused() -> None:
    headers, body = resync()
    assert call(headers, body, env={**ENV, "WEB_SECRET": ""})[0] == 401


def test_only_post_is_accepted() -> None:
    headers, body = resync()
    assert call(headers, body, method="GET")[0] == 405


@pytest.mark.parametrize(
    ("headers", "body", "needle"),
    [
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        ({"content-type": "application/cloudevents+json"}, b"{oops", "not a CloudEvent"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/x",
                "ce-type": "com.example",
                "content-type": "application/json",
            },
            b"{}",
            "unknown event type",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/x",
                "ce-type": contract.EVENT_SERVICE_CHANGED,
                "content-type": "application/json",
            },
            b"{}",
            "subject",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/x",
                "ce-subject": "../etc",
                "ce-type": contract.EVENT_SERVICE_CHANGED,
                "content-type": "application/json",
            },
            b"{}",
            "subject",
        ),
    ],
    ids=["no-event", "bad-json", "unknown-type", "no-subject", "bad-subject"],
)
def test_a_malformed_event_is_400(headers: dict[str, str], body: bytes, needle: str) -> None:
    status, answer = call({**headers, contract.AUTH_HEADER: WEB_SECRET}, body)
    assert status == 400
    assert needle in str(answer["error"])


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"CLUSTER_ID": ""}, "CLUSTER_ID is not set"),
        ({"CLUSTER_ID": "prod"}, "CLUSTER_ID must be the cluster's UUID"),
        ({"KUBE_API_URL": "http://10.0.0.1"}, "KUBE_API_URL must be an https:// URL"),
        ({"KUBE_CA_DATA": "not base64!"}, "KUBE_CA_DATA must be base64"),
        ({"KUBE_CA_DATA": "aGVsbG8="}, "KUBE_CA_DATA does not decode to a PEM certificate"),
        ({"DIGITALOCEAN_TOKEN": ""}, "DIGITALOCEAN_TOKEN is not set"),
        ({"DIGITALOCEAN_API_URL": "ftp://x"}, "DIGITALOCEAN_API_URL must be an https:// URL"),
        ({"DRY_RUN": "perhaps"}, "DRY_RUN must be true or false"),
        ({"UNASSIGN_UNCLAIMED": "sometimes"}, "UNASSIGN_UNCLAIMED must be true or false"),
        ({"NAMESPACES": "ok,Not_OK"}, "NAMESPACES: 'Not_OK' is not a valid namespace name"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_bad_setting_is_named_before_any_call(change: dict[str, str], needle: str) -> None:
    headers, body = resync()
    status, answer = call(headers, body, env={**ENV, **change})
    assert status == 500
    assert needle in str(answer["error"])


def test_a_short_secret_is_refused_as_configuration() -> None:
    headers, body = binary_event(contract.EVENT_RESYNC)
    headers[contract.AUTH_HEADER] = "short"
    status, answer = call(headers, body, env={**ENV, "WEB_SECRET": "short"})
    assert (status, "WEB_SECRET must be at least 16" in str(answer["error"])) == (500, True)


@pytest.mark.slow  # retries an absent apiserver until its deadline
def test_secrets_never_appear_in_answers_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers, body = resync()
    answers = [
        call(headers, body, env={**ENV, "CLUSTER_ID": ""}),
        call(headers, body, method="GET"),
        call({contract.AUTH_HEADER: "wrong"}, body),
        call(headers, body),  # reaches for the apiserver that is not there: 503
    ]
    assert answers[-1][0] == 503
    text = json.dumps(answers) + caplog.text
    for secret in (ENV["DIGITALOCEAN_TOKEN"], KUBE_TOKEN, WEB_SECRET):
        assert secret not in text


def test_a_star_or_nothing_means_every_namespace() -> None:
    from floating_ip.config import Config

    for value in ("*", "", " * "):
        assert Config.from_env({**ENV, "NAMESPACES": value}).namespaces == ()
    assert Config.from_env({**ENV, "NAMESPACES": "a, b"}).namespaces == ("a", "b")


def test_an_event_from_another_cluster_is_refused() -> None:
    headers, body = resync()
    other = {**headers, "ce-clusterid": "00000000-0000-4000-8000-000000000000"}
    status, answer = call(other, body)
    assert status == 400
    assert "this function serves " + ENV["CLUSTER_ID"] in str(answer["error"])


@pytest.mark.parametrize("token", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_a_call_without_the_cluster_token_is_400_naming_the_upgrade_order(
    token: str | None,
) -> None:
    """What release 0.1.0's forwarder sends (its function held a standing credential): a 400,
    which that forwarder logs as versions out of step (a 401 it would blame on WEB_SECRET)."""
    headers, body = resync()
    status, answer = call(headers, body, token=token)
    assert status == 400
    error = str(answer["error"])
    assert error.startswith(f"missing {contract.KUBE_TOKEN_HEADER} header: ")
    assert "release 0.1.0 sends none: upgrade the event forwarder first" in error
    assert "set the same CLUSTER_ACCESS on both sides" in error
    # The secret is checked first: a stranger learns nothing about the token.
    del headers[contract.AUTH_HEADER]
    status, answer = call(headers, body, token=None)
    assert (status, contract.AUTH_HEADER in str(answer["error"])) == (401, True)


@pytest.mark.parametrize(
    "token",
    ["two words", "line\nbreak", "x" * 20_000, "caf\u00e9"],
    ids=["space", "newline", "huge", "non-ascii"],
)
def test_a_malformed_cluster_token_is_401_and_never_echoed(token: str) -> None:
    headers, body = resync()
    status, answer = call(headers, body, token=token)
    assert status == 401
    assert contract.KUBE_TOKEN_HEADER in str(answer["error"])
    assert token not in json.dumps(answer)


def test_the_function_holds_no_cluster_token_of_its_own() -> None:
    from floating_ip.config import SETTINGS, Config

    assert not [name for name in SETTINGS if "TOKEN" in name and name != "DIGITALOCEAN_TOKEN"]
    assert "token" not in " ".join(f.lower() for f in Config.__dataclass_fields__ if "kube" in f)


RELAY = {k: v for k, v in ENV.items() if not k.startswith("KUBE_")} | {"CLUSTER_ACCESS": "relay"}
STATE: dict[str, object] = {
    "services": [],
    "endpointslices": [],
    "pods": [],
    "nodes": [],
    "suspicions": {},
}


def test_relay_mode_needs_no_kubernetes_setting_and_no_token_but_the_state() -> None:
    from floating_ip.config import Config

    assert Config.from_env(RELAY).cluster_access == "relay"
    headers, _ = resync()
    status, answer = call(headers, b"{}", env=RELAY, token=None)
    assert status == 400
    assert "no cluster state" in str(answer["error"])
    assert "CLUSTER_ACCESS=relay on the forwarder" in str(answer["error"])


def test_callback_mode_never_acts_on_state_an_event_claims() -> None:
    headers, _ = resync()
    status, answer = call(headers, json.dumps({"state": STATE}).encode())
    assert status == 400
    assert "CLUSTER_ACCESS is callback" in str(answer["error"])


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        ([], "must be a JSON object"),
        ({**STATE, "nodes": {}}, "state.nodes must be a list"),
        ({**STATE, "services": [{"metadata": {}}]}, "state.services must be a list"),
        ({**STATE, "suspicions": {"n": 1}}, "state.suspicions"),
    ],
    ids=["not-object", "nodes-object", "nameless", "suspicion-number"],
)
def test_a_malformed_relay_state_is_400_naming_the_part(state: object, needle: str) -> None:
    headers, _ = resync()
    status, answer = call(headers, json.dumps({"state": state}).encode(), env=RELAY, token=None)
    assert status == 400
    assert needle in str(answer["error"])


def test_a_wrong_cluster_access_is_named() -> None:
    headers, body = resync()
    status, answer = call(headers, body, env={**ENV, "CLUSTER_ACCESS": "tunnel"})
    assert status == 500
    assert "CLUSTER_ACCESS must be callback or relay" in str(answer["error"])
