"""The doctor against the bed: the real control plane with the shipped install, the
DigitalOcean imitation, and the real function served over HTTPS. Each check passes on a
healthy setup and fails, naming the fix, on a broken one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from floating_ip_common import contract
from testbed.controlplane import ControlPlane
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld
from testbed.forwarder_harness import CLUSTER_ID, NAMESPACE, Shipped
from testbed.kube import KubeBed, Port
from testbed.layout import REPO
from testbed.processes import wait_until
from testbed.tls import CertFiles, TestCA
from tests.forwarder.conftest import StartForwarder
from tests.forwarder.test_function_e2e import function_url
from tools import doctor

__all__ = ["function_url"]  # a fixture, used by name
IP = "192.0.2.20"


@pytest.fixture
def trust(
    world: DoksWorld,
    receiver_tls: tuple[TestCA, CertFiles],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """SSL_CERT_FILE, as a user with a private CA sets it: the imitation's and the function's."""
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(world.do.ca_file.read_bytes() + receiver_tls[0].ca_file.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return bundle


def kubectl(control_plane: ControlPlane) -> doctor.Kubectl:
    return doctor.Kubectl(control_plane.kubectl, [f"--kubeconfig={control_plane.kubeconfig_path}"])


def digitalocean(world: DoksWorld, token: str | None = None) -> doctor.DigitalOcean:
    return doctor.DigitalOcean(token or world.do.token, world.do.url)


def served(world: DoksWorld, kube: KubeBed, namespace: str, node: str = "a") -> dict[str, Any]:
    """A Traefik-like Service opted in for IP, its pod ready on ``node``; as the doctor sees it."""
    kube.create_service(
        namespace, "traefik", [Port(80)], selector={"app": "traefik"},
        annotations={contract.ADDRESS: IP},
    )  # fmt: skip
    kube.create_pod(namespace, "traefik-1", world.node(node), {"app": "traefik"})
    found = kubectl(world.control_plane).get("service", "traefik", "-n", namespace)
    return dict(found)


def setup(world: DoksWorld, services: list[dict[str, Any]], **fields: str) -> doctor.Setup:
    values = {"cluster_id": world.cluster_id, "function_url": "", "web_secret": "", **fields}
    return doctor.Setup(NAMESPACE, services=services, **values)


def by_name(results: list[doctor.Result]) -> dict[str, doctor.Result]:
    return {r.name: r for r in results}


# --- install -------------------------------------------------------------------------------------


def test_the_install_is_found_with_its_settings_and_missing_elsewhere(
    shipped: Shipped, control_plane: ControlPlane, web_secret: str
) -> None:
    found, result = doctor.read_setup(kubectl(control_plane), NAMESPACE, "")
    assert result.ok, result.line()
    assert (found.cluster_id, found.web_secret) == (CLUSTER_ID, web_secret)

    _, missing = doctor.read_setup(kubectl(control_plane), "nowhere", "")
    assert not missing.ok
    assert "install it" in missing.fix


# --- DigitalOcean ---------------------------------------------------------------------------------


def test_the_token_is_checked_for_each_call_the_function_makes(
    world: DoksWorld, trust: Path
) -> None:
    good = doctor.check_token(digitalocean(world), world.cluster_id)
    assert [r.ok for r in good] == [True] * len(doctor.TOKEN_CALLS), [r.line() for r in good]

    bad = doctor.check_token(digitalocean(world, "dop_v1_" + "0" * 64), world.cluster_id)
    assert [r.ok for r in bad] == [False] * len(doctor.TOKEN_CALLS)
    assert all(r.detail.startswith("401") and "wrong, expired" in r.fix for r in bad)

    world.do.add_token("dop_v1_scoped", scopes=["reserved_ip:read", "droplet:read"])
    scoped = by_name(doctor.check_token(digitalocean(world, "dop_v1_scoped"), world.cluster_id))
    assert [n for n, r in scoped.items() if not r.ok] == [
        "token firewall:read",
        "token kubernetes:read",
    ]
    assert scoped["token firewall:read"].detail.startswith("403")
    assert scoped["token firewall:read"].fix.startswith("give the token the firewall:read scope")

    other = by_name(doctor.check_token(digitalocean(world), str(uuid.uuid4())))
    assert not other["token kubernetes:read"].ok
    assert "CLUSTER_ID names no cluster" in other["token kubernetes:read"].fix


def test_each_ip_is_checked_for_account_region_and_assignment(
    world: DoksWorld, kube: KubeBed, namespace: str, trust: Path
) -> None:
    service = served(world, kube, namespace)
    world.do.add_reserved_ip(IP, region=world.region, droplet_id=world.droplets["a"].droplet_id)
    good = by_name(doctor.check_ips(digitalocean(world), setup(world, [service])))
    assert good[f"region {IP}"].ok
    assert good[f"ip {IP}"].ok
    assert f"assigned to droplet {world.droplets['a'].droplet_id}" in good[f"ip {IP}"].detail

    elsewhere = "192.0.2.21"
    stray = {
        **service,
        "metadata": {**service["metadata"], "annotations": {contract.ADDRESS: elsewhere}},
    }
    missing = by_name(doctor.check_ips(digitalocean(world), setup(world, [stray])))
    assert not missing[f"ip {elsewhere}"].ok
    assert "not a reserved IP of this account" in missing[f"ip {elsewhere}"].detail

    world.do.add_reserved_ip(elsewhere, region="ams3")
    far = by_name(doctor.check_ips(digitalocean(world), setup(world, [stray])))
    assert not far[f"region {elsewhere}"].ok
    assert far[f"region {elsewhere}"].detail == f"IP in ams3, cluster in {world.region}"


# --- the cluster ----------------------------------------------------------------------------------

DENY_EXTERNAL_IPS = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deny-external-ips-NS}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}
  validations:
    - expression: "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0"
      message: externalIPs are not allowed here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deny-external-ips-NS}
spec:
  policyName: deny-external-ips-NS
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: NS}
"""


def test_external_ips_are_tried_with_a_server_side_dry_run(
    shipped: Shipped, world: DoksWorld, kube: KubeBed, namespace: str, control_plane: ControlPlane
) -> None:
    service = served(world, kube, namespace)
    [good] = doctor.check_external_ips(kubectl(control_plane), setup(world, [service]))
    assert good.ok, good.line()
    assert kube.core.read_namespaced_service("traefik", namespace).spec.external_ips is None

    policy = DENY_EXTERNAL_IPS.replace("NS", namespace)
    kubectl(control_plane).run("apply", "-f", "-", input_text=policy).check_returncode()
    found: list[doctor.Result] = []

    def refused() -> bool:
        found[:] = doctor.check_external_ips(kubectl(control_plane), setup(world, [service]))
        return not found[0].ok

    try:
        # The API server loads a new policy a moment after it is created.
        wait_until(refused, timeout=30, interval=0.5, what="the policy in force")
    finally:
        kubectl(control_plane).run("delete", "-f", "-", input_text=policy)
    [bad] = found
    assert "externalIPs are not allowed here" in bad.detail
    assert "admission policy" in bad.fix


def test_a_class_service_is_tried_as_a_status_patch_and_a_foreign_one_is_named(
    shipped: Shipped, world: DoksWorld, kube: KubeBed, namespace: str, control_plane: ControlPlane
) -> None:
    for name, lb_class in (("ours", contract.LOAD_BALANCER_CLASS), ("theirs", None)):
        kube.create_service(
            namespace,
            name,
            [Port(80)],
            annotations={contract.ADDRESS: IP},
            service_type="LoadBalancer",
            load_balancer_class=lb_class,
            allocate_load_balancer_node_ports=False,
        )
    services = [
        dict(kubectl(control_plane).get("service", name, "-n", namespace))
        for name in ("ours", "theirs")
    ]
    ours, theirs = doctor.check_external_ips(kubectl(control_plane), setup(world, services))
    assert ours.ok and ours.name.startswith("status "), ours.line()
    assert not theirs.ok and "no class" in theirs.detail
    assert contract.LOAD_BALANCER_CLASS in theirs.fix
    assert not kube.core.read_namespaced_service("ours", namespace).status.load_balancer.ingress


def test_the_annotator_is_seen_to_have_run_on_the_pods_nodes(
    world: DoksWorld, kube: KubeBed, namespace: str, control_plane: ControlPlane
) -> None:
    world.add_node("c", anchor_on_node=False)
    [good] = doctor.check_annotator(
        kubectl(control_plane), setup(world, [served(world, kube, namespace)])
    )
    assert good.ok, good.line()

    kube.delete_pod(namespace, "traefik-1")
    kube.create_pod(namespace, "traefik-2", world.node("c"), {"app": "traefik"})
    service = dict(kubectl(control_plane).get("service", "traefik", "-n", namespace))
    [bad] = doctor.check_annotator(kubectl(control_plane), setup(world, [service]))
    assert not bad.ok
    assert "traefik-2" in bad.detail
    assert "annotator" in bad.fix


def test_the_forwarders_leader_is_found_by_its_lease(
    start_forwarder: StartForwarder, world: DoksWorld, control_plane: ControlPlane
) -> None:
    forwarder = start_forwarder(LEASE_NAME=doctor.FORWARDER)
    forwarder.wait_metric("leader", 1)
    results = by_name(doctor.check_forwarder(kubectl(control_plane), setup(world, [])))
    assert results["forwarder leader"].ok, results["forwarder leader"].line()
    assert results["forwarder leader"].detail.startswith("replica-0")
    # Its metrics are read through the API server's pod proxy: a bed has no pods to proxy to.
    assert not results["forwarder last send"].ok

    elsewhere = doctor.Setup("no-forwarder-here", cluster_id=world.cluster_id)
    [absent] = doctor.check_forwarder(kubectl(control_plane), elsewhere)
    assert not absent.ok
    assert "logs deploy/event-forwarder" in absent.fix


# --- the function ---------------------------------------------------------------------------------


def test_the_function_refuses_strangers_and_reaches_both_apis_for_a_dry_run(
    function_url: str, world: DoksWorld, kube: KubeBed, namespace: str, web_secret: str, trust: Path
) -> None:
    served(world, kube, namespace)
    world.do.add_reserved_ip(IP, region=world.region)
    healthy = setup(world, [], function_url=function_url, web_secret=web_secret)
    minting = by_name(doctor.check_function_token(kubectl(world.control_plane), healthy))
    check = "forwarder mints the function's token"
    assert minting[check].ok, minting[check].line()
    assert healthy.kube_token, "minted as the forwarder mints it"
    assert healthy.kube_token not in repr(healthy)
    results = by_name(doctor.check_function(healthy))
    assert results["function secret"].ok, results["function secret"].line()
    wants = results["function wants the forwarder's token"]
    assert wants.ok, wants.line()
    assert results["function reaches the APIs"].ok, results["function reaches the APIs"].line()
    assert world.holder_of(IP) is None, "a dry run moves nothing"

    tokenless = by_name(
        doctor.check_function(setup(world, [], function_url=function_url, web_secret=web_secret))
    )
    assert not tokenless["function reaches the APIs"].ok
    assert "could be minted" in tokenless["function reaches the APIs"].fix

    wrong = by_name(
        doctor.check_function(
            setup(
                world,
                [],
                function_url=function_url,
                web_secret="x" * 20,
                kube_token=healthy.kube_token,
            )
        )
    )
    assert not wrong["function reaches the APIs"].ok
    assert "must be the same" in wrong["function reaches the APIs"].fix

    other = setup(
        world,
        [],
        function_url=function_url,
        web_secret=web_secret,
        cluster_id=str(uuid.uuid4()),
        kube_token=healthy.kube_token,
    )
    mismatch = by_name(doctor.check_function(other))
    assert not mismatch["function reaches the APIs"].ok
    assert "same CLUSTER_ID" in mismatch["function reaches the APIs"].fix

    # The forwarder set to relay mode, this function not: the fix names the setting.
    relayed = setup(
        world, [], function_url=function_url, web_secret=web_secret, cluster_access="relay"
    )
    odd = by_name(doctor.check_function(relayed))["function is in relay mode"]
    assert not odd.ok
    assert "CLUSTER_ACCESS=relay" in odd.fix

    nowhere = by_name(doctor.check_function(setup(world, [], function_url="http://127.0.0.1:1/")))
    assert not nowhere["function secret"].ok


# --- the command ----------------------------------------------------------------------------------


def test_the_command_prints_one_line_per_check_and_fails_on_any_failure(
    shipped: Shipped, control_plane: ControlPlane, do_api: DoImitation, tmp_path: Path
) -> None:
    """The shipped install points at a function that does not exist: the doctor says so and
    exits 1; every line is a verdict, and a failure carries its fix."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECTL": control_plane.kubectl,
        "DIGITALOCEAN_TOKEN": do_api.token,
        "DIGITALOCEAN_API_URL": do_api.url,
        "SSL_CERT_FILE": str(do_api.ca_file),
    }
    done = subprocess.run(
        [
            *(sys.executable, "-S", str(REPO / "tools" / "doctor.py")),
            f"--kubeconfig={control_plane.kubeconfig_path}",
            "--function-url=https://127.0.0.1:1/",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    *lines, summary = done.stdout.splitlines()
    assert lines[0].startswith("ok    install:")
    assert all(line.startswith(("ok    ", "FAIL  ")) for line in lines), lines
    assert all("-> fix: " in line for line in lines if line.startswith("FAIL"))
    assert any(line.startswith("FAIL  token kubernetes:read") for line in lines)  # no such cluster
    assert summary.endswith(" failed")

    without = subprocess.run(
        [sys.executable, "-S", str(REPO / "tools" / "doctor.py")],
        env={k: v for k, v in env.items() if k != "DIGITALOCEAN_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert without.returncode == 2
    assert "set DIGITALOCEAN_TOKEN" in without.stderr


def test_a_forwarder_that_may_not_mint_the_token_is_named_with_the_fix(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed
) -> None:
    found = doctor.Setup(NAMESPACE)
    binding = kube.rbac.read_namespaced_role_binding("event-forwarder-function-token", NAMESPACE)
    kube.rbac.delete_namespaced_role_binding(binding.metadata.name, NAMESPACE)
    try:
        results = by_name(doctor.check_function_token(kubectl(control_plane), found))
    finally:
        binding.metadata.resource_version = None
        kube.rbac.create_namespaced_role_binding(NAMESPACE, binding)
    refused = results["forwarder mints the function's token"]
    assert not refused.ok
    assert "serviceaccounts/token" in refused.fix
    assert found.kube_token, "the doctor's own token still lets it call the function"


def test_a_forwarder_that_may_not_warn_on_a_node_is_named_with_the_fix(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed
) -> None:
    found = doctor.Setup(NAMESPACE)
    name = "floating-ip-event-forwarder-node-events"
    [allowed] = doctor.check_node_events(kubectl(control_plane), found)
    assert allowed.ok, allowed.line()
    binding = kube.rbac.read_namespaced_role_binding(name, "default")
    kube.rbac.delete_namespaced_role_binding(name, "default")
    try:
        [refused] = doctor.check_node_events(kubectl(control_plane), found)
    finally:
        binding.metadata.resource_version = None
        kube.rbac.create_namespaced_role_binding("default", binding)
    assert not refused.ok
    assert name in refused.fix


@pytest.mark.parametrize("cluster_access", ["relay"])
def test_in_relay_mode_the_doctor_checks_the_forwarders_writes_and_a_stateless_call(
    cluster_access: str,
    function_url: str,
    world: DoksWorld,
    control_plane: ControlPlane,
    web_secret: str,
    trust: Path,
) -> None:
    relayed = setup(
        world, [], function_url=function_url, web_secret=web_secret, cluster_access=cluster_access
    )
    rights = doctor.check_function_token(kubectl(control_plane), relayed)
    assert [r.name for r in rights if r.ok] == [
        "relay: forwarder may patch services",
        "relay: forwarder may patch services/status",
        "relay: forwarder may create events",
    ], [r.line() for r in rights]
    results = by_name(doctor.check_function(relayed))
    for name in ("function secret", "function is in relay mode", "function reaches DigitalOcean"):
        assert results[name].ok, results[name].line()
