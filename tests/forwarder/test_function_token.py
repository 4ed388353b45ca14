"""The function's short-lived token, minted by the forwarder's shipped identity on the bed's
real apiserver: ten minutes, the function's ServiceAccount, cached for half its life, and a
refusal that names the missing right without ever showing a token."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from floating_ip_common import contract
from floating_ip_common.kube_access import KubeAccess
from floating_ip_common.kube_client import KubeClient
from floating_ip_forwarder.forwarding.function_token import FunctionToken, TokenUnavailable
from testbed.controlplane import ControlPlane
from testbed.forwarder_harness import FORWARDER_ACCOUNT, FUNCTION_ACCOUNT, NAMESPACE, Shipped
from testbed.kube import KubeBed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_as(
    control_plane: ControlPlane, kube: KubeBed, namespace: str, account: str, tmp_path: Path
) -> KubeClient:
    token = tmp_path / f"{account}.token"
    token.write_text(kube.mint_token(namespace, account))
    return KubeClient(KubeAccess(control_plane.url, str(token), str(control_plane.ca.ca_file)))


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_a_ten_minute_token_of_the_function_is_cached_for_half_its_life(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed, tmp_path: Path
) -> None:
    clock, mints = Clock(), []
    client = client_as(control_plane, kube, NAMESPACE, FORWARDER_ACCOUNT, tmp_path)
    token = FunctionToken(client, NAMESPACE, clock=clock, on_mint=lambda: mints.append(1))
    try:
        first = token.get()
        said = claims(first)
        assert said["sub"] == f"system:serviceaccount:{NAMESPACE}:{FUNCTION_ACCOUNT}"
        assert said["exp"] - said["iat"] == contract.KUBE_TOKEN_SECONDS
        assert "pod" not in said.get("kubernetes.io", {}), "bound to nothing but its lifetime"

        clock.now += contract.KUBE_TOKEN_SECONDS / 2 - 1
        assert token.get() == first
        assert len(mints) == 1

        clock.now += 1  # half its life gone: the next call gets a fresh one
        second = token.get()
        assert len(mints) == 2
        assert claims(second)["sub"] == said["sub"]

        token.forget()  # the function refused a call
        token.get()
        assert len(mints) == 3
        assert first not in repr(token)
    finally:
        token.close()


def test_without_the_right_to_mint_the_refusal_names_the_rbac_and_no_token(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed, namespace: str, tmp_path: Path
) -> None:
    kube.create_service_account(namespace, "stranger")
    client = client_as(control_plane, kube, namespace, "stranger", tmp_path)
    token = FunctionToken(client, NAMESPACE)
    try:
        with pytest.raises(TokenUnavailable) as refused:
            token.get()
    finally:
        token.close()
    message = str(refused.value)
    assert "403" in message
    assert "serviceaccounts/token" in message
    assert f"{NAMESPACE}/{FUNCTION_ACCOUNT}" in message
    assert "eyJ" not in message


def test_an_account_that_does_not_exist_is_named(
    shipped: Shipped, control_plane: ControlPlane, kube: KubeBed, tmp_path: Path
) -> None:
    client = client_as(control_plane, kube, NAMESPACE, FORWARDER_ACCOUNT, tmp_path)
    # The forwarder may mint only for the function's account: a renamed one is a 403 too.
    token = FunctionToken(client, NAMESPACE, "no-such-account")
    try:
        with pytest.raises(TokenUnavailable, match="403"):
            token.get()
    finally:
        token.close()
