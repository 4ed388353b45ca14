"""Version skew across a real upgrade: the previous release's forwarder against this function,
and this forwarder against the previous release's function, each side run as it shipped.

The previous release's code comes from the repository's history (``testbed.previous_release``)
and runs in processes whose import path holds only it: its forwarder on the image's
standard-library interpreter, its function in functions-framework configured as its users
configured it (a standing ``KUBE_TOKEN`` in its ``.env``). The current side is run as in
``test_function_e2e.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from floating_ip.config import SETTINGS
from floating_ip_common import contract
from testbed.doks import DoksWorld
from testbed.forwarder_harness import FUNCTION_ACCOUNT, NAMESPACE
from testbed.kube import KubeBed
from testbed.previous_release import HistoryMissing, PreviousRelease, extract
from testbed.processes import wait_until
from testbed.tls import CertFiles, TestCA
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_function_e2e import IP, PORTS, placed, serve_function


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> PreviousRelease:
    try:
        return extract(tmp_path_factory.mktemp("previous-release"))
    except HistoryMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def function_answers(log: Path) -> list[dict[str, Any]]:
    """The function's one summary line per call (its status and error), from its log."""
    answers = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "status" in entry:
            answers.append(entry)
    return answers


def test_the_function_first_refuses_the_previous_forwarder_naming_the_upgrade_order(
    previous: PreviousRelease,
    start_forwarder: StartForwarder,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    receiver_tls: tuple[TestCA, CertFiles],
    web_secret: str,
    tmp_path: Path,
) -> None:
    """Release 0.1.0's forwarder sends no Kubernetes token (its function held one of its own);
    this function holds none, so it cannot act on that event. It says why and what to do, with
    a status the old forwarder reads as versions out of step and retries minutes later."""
    with serve_function(world, kube, namespace, receiver_tls, web_secret, tmp_path) as (url, log):
        forwarder = start_forwarder(
            namespace, code=previous.in_cluster, FUNCTION_URL=url, CLUSTER_ID=world.cluster_id
        )
        # Leading, it sends a resync at once, without a token (this release's forwarder, on the
        # same RBAC, would mint one and be answered 200).
        forwarder.wait_metric("send_failures", 1, reason="400")
        answers = function_answers(log)

    assert [a["status"] for a in answers] == [400], answers
    error = answers[0]["error"]
    assert error.startswith(f"missing {contract.KUBE_TOKEN_HEADER} header"), error
    assert "release 0.1.0" in error and "upgrade the event forwarder first" in error, error
    # What the previous forwarder makes of it: its own cause for a 400, counted by status.
    [logged] = [e for e in forwarder.logs() if e.get("level") == "error"]
    assert logged["message"] == (
        "the function rejected the event as malformed (400): versions out of step?"
    )
    assert (logged["status"], logged["event"]) == (400, "resync")
    # Kept for a retry minutes later, not in a loop (the change is not lost).
    assert 270 <= logged["retry_in"] <= 330, logged
    assert forwarder.metric("send_failures", reason="400") == 1
    assert forwarder.metric("events_sent", type="resync") == 0


def test_the_forwarder_first_drives_the_previous_function(
    previous: PreviousRelease,
    start_forwarder: StartForwarder,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    receiver_tls: tuple[TestCA, CertFiles],
    web_secret: str,
    tmp_path: Path,
) -> None:
    """This forwarder's events (schema 2, with a token the previous function does not read) to
    release 0.1.0's function, which acts with its standing credential: the IP is placed."""
    # 0.1.0's .env: its own settings, KUBE_TOKEN a token of the function's ServiceAccount (the
    # shipped base created the account and its RBAC), long-lived as its Secret's was.
    standing = kube.mint_token(NAMESPACE, FUNCTION_ACCOUNT)
    world.do.add_reserved_ip(IP, region=world.region)
    kube.create_service(namespace, "traefik", PORTS, annotations={contract.ADDRESS: IP})
    kube.create_pod(namespace, "traefik-1", world.node("a"), {"app": "traefik"})
    kube.sync_endpoint_slices(namespace, "traefik")
    served = serve_function(
        world,
        kube,
        namespace,
        receiver_tls,
        web_secret,
        tmp_path,
        code=previous.root,
        pythonpath=previous.function_pythonpath,
        KUBE_TOKEN=standing,
    )
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    previous.check_imported_from_here(
        {**inherited, "PYTHONPATH": previous.function_pythonpath},
        "floating_ip.handler",
        "floating_ip_common.contract",
    )
    with served as (url, log):
        forwarder = start_forwarder(namespace, FUNCTION_URL=url, CLUSTER_ID=world.cluster_id)
        # The resync at the start of its leadership places the IP...
        wait_until(lambda: placed(world, kube, namespace, "a"), timeout=60, what="the IP on node a")
        # ...and the Service's event moves it with the pod.
        kube.delete_pod(namespace, "traefik-1")
        kube.create_pod(namespace, "traefik-2", world.node("b"), {"app": "traefik"})
        kube.sync_endpoint_slices(namespace, "traefik")
        wait_until(lambda: placed(world, kube, namespace, "b"), timeout=60, what="the IP on node b")
        wait_until(
            lambda: forwarder.metric("events_sent", type="service") >= 1,
            timeout=30,
            what="the Service's event counted as delivered",
        )
        answers = function_answers(log)

    assert answers and {a["status"] for a in answers} == {200}, answers
    failures = {k: v for k, v in forwarder.metrics().items() if "send_failures_total" in k}
    assert sum(failures.values()) == 0, failures
