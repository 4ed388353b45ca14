"""The functions-framework target over real HTTP: ``functions-framework --source
lib/floating_ip/entry_functions_framework.py --target reconcile`` as a user would start it,
configured by its environment, receiving CloudEvents from a real HTTP client.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from floating_ip.config import SETTINGS
from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.function_harness import FunctionRunner, binary_event, move_traefik, serve_traefik
from testbed.kube import KubeBed
from testbed.layout import FUNCTION_PYTHONPATH
from testbed.processes import free_port, start, stop, wait_until

REPO = Path(__file__).resolve().parents[2]
IP = "192.0.2.10"


@pytest.fixture
def endpoint(runner: FunctionRunner, tmp_path: Path) -> Iterator[str]:
    """The framework serving the function on a loopback port, stopped at the end."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env = {**inherited, **runner.env, "PYTHONPATH": FUNCTION_PYTHONPATH}
    log = tmp_path / "functions-framework.log"
    argv = [
        str(Path(sys.executable).parent / "functions-framework"),
        "--source",
        "lib/floating_ip/entry_functions_framework.py",
        "--target",
        "reconcile",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = start(argv, log, env=env, cwd=REPO)
    try:
        wait_until(
            lambda: _listening(port),
            timeout=30,
            what="functions-framework listening",
            process=process,
            log=log,
        )
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(process)
        # The server forks workers into the session started for it: none may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment
    with session:
        yield session


def structured_event(kind: str, secret: str, kube_token: str) -> tuple[dict[str, str], bytes]:
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/tests", "type": kind}
    headers = {
        "Content-Type": "application/cloudevents+json",
        contract.AUTH_HEADER: secret,
        contract.KUBE_TOKEN_HEADER: kube_token,
    }
    return headers, json.dumps(event).encode()


def test_binary_and_structured_events_over_http_place_the_ip(
    endpoint: str,
    http: requests.Session,
    runner: FunctionRunner,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
) -> None:
    serve_traefik(world, namespace, IP, "a")
    headers, body = binary_event(
        contract.EVENT_SERVICE_CHANGED, f"{namespace}/traefik", kube_token=runner.kube_token
    )
    answer = http.post(endpoint, headers=headers, data=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["errors"] == []
    assert world.holder_of(IP) == "a"

    move_traefik(world, namespace, 2, "b")
    headers, body = structured_event(
        contract.EVENT_RESYNC, runner.env["WEB_SECRET"], runner.kube_token
    )
    answer = http.post(endpoint, headers=headers, data=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["errors"] == []
    assert world.holder_of(IP) == "b"


def test_refusals_over_http_call_nothing(
    endpoint: str, http: requests.Session, runner: FunctionRunner, world: DoksWorld
) -> None:
    secret = runner.env["WEB_SECRET"]
    headers, body = binary_event(contract.EVENT_RESYNC, kube_token=runner.kube_token)
    world.do.clear_requests()

    unsigned = {k: v for k, v in headers.items() if k != contract.AUTH_HEADER}
    answer = http.post(endpoint, headers=unsigned, data=body, timeout=30)
    assert answer.status_code == 401, answer.text
    assert contract.AUTH_HEADER in answer.json()["error"]

    wrong = {**headers, contract.AUTH_HEADER: secret[::-1]}
    assert http.post(endpoint, headers=wrong, data=body, timeout=30).status_code == 401

    tokenless = {k: v for k, v in headers.items() if k != contract.KUBE_TOKEN_HEADER}
    answer = http.post(endpoint, headers=tokenless, data=body, timeout=30)
    assert answer.status_code == 400, answer.text
    assert contract.KUBE_TOKEN_HEADER in answer.json()["error"]

    garbled = {
        "Content-Type": "application/cloudevents+json",
        contract.AUTH_HEADER: secret,
        contract.KUBE_TOKEN_HEADER: runner.kube_token,
    }
    answer = http.post(endpoint, headers=garbled, data=b"{not json", timeout=30)
    assert answer.status_code == 400, answer.text
    untyped = {k: v for k, v in headers.items() if k != "ce-type"}
    assert http.post(endpoint, headers=untyped, data=body, timeout=30).status_code == 400

    answer = http.get(endpoint, headers={contract.AUTH_HEADER: secret}, timeout=30)
    assert answer.status_code == 405, answer.text
    assert answer.headers["Allow"] == "POST"

    assert world.do.requests() == []


def test_a_slow_body_ties_up_only_its_own_connection(
    endpoint: str, http: requests.Session, runner: FunctionRunner, world: DoksWorld
) -> None:
    """A sender that trickles a body (or never finishes it) does not stop the function from
    answering others, and what it sent is never acted on."""
    port = int(endpoint.rsplit(":", 1)[1].strip("/"))
    world.do.clear_requests()
    headers, _ = binary_event(contract.EVENT_RESYNC)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: 1000\r\n\r\n{{".encode()
        )
        answer = http.post(endpoint, data=b"{}", timeout=30)  # meanwhile, someone else
        assert answer.status_code == 401, answer.text
    # The slow sender gave up before its body was complete: nothing was read or written.
    assert world.do.requests() == []
