"""The function's Kubernetes credential: a short-lived token of its ServiceAccount, minted here
with the TokenRequest API and sent with each event, so the function holds no standing one.

One token serves every sender until half its life is gone: a token handed out still has at
least five minutes to live, far more than one call of the function lasts (its timeout is
30 s), and a refresh costs one request to the apiserver every five minutes.

The token is not bound to this Pod: the apiserver refuses to bind a token of one
ServiceAccount to a Pod that runs as another ("cannot bind token for serviceaccount ... to pod
running with different serviceaccount name"). Its ten-minute lifetime is the bound.

Never logged: errors say what failed, never what was minted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from floating_ip_common import contract
from floating_ip_common.kube_client import ApiError, KubeClient

REFRESH_AFTER = 0.5
"""A fraction of the lifetime: past it, the next call mints a new token."""


class TokenUnavailable(Exception):
    """No token could be minted; the message names the cause and the fix (never a token)."""


class FunctionToken:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        account: str = contract.FUNCTION_ACCOUNT,
        *,
        seconds: int = contract.KUBE_TOKEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_mint: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = (
            f"/api/v1/namespaces/{quote(namespace, safe='')}"
            f"/serviceaccounts/{quote(account, safe='')}/token"
        )
        self.account = f"{namespace}/{account}"
        self.seconds = seconds
        self.clock = clock
        self.on_mint = on_mint
        self._connection = client.connection()
        self._lock = threading.Lock()
        self._token = ""
        self._fresh_until = 0.0

    def __repr__(self) -> str:
        return f"FunctionToken({self.account})"

    def get(self) -> str:
        """A token with at least half its lifetime left (minted now if needed)."""
        with self._lock:
            now = self.clock()
            if not self._token or now >= self._fresh_until:
                self._token = self._mint()
                self._fresh_until = now + self.seconds * REFRESH_AFTER
                self.on_mint()
            return self._token

    def forget(self) -> None:
        """The function refused or failed a call: the next one mints afresh."""
        with self._lock:
            self._token = ""

    def close(self) -> None:
        self._connection.close()

    def _mint(self) -> str:
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": self.seconds},
        }
        try:
            answer = self._connection.request("POST", self.path, request)
        except ApiError as error:
            fix = ""
            if error.status == 403:
                fix = (
                    ": the forwarder needs create on serviceaccounts/token for "
                    f"{self.account} (deploy/base/rbac/event-forwarder.yaml)"
                )
            elif error.status == 404:
                fix = f": the ServiceAccount {self.account} does not exist (apply the install)"
            raise TokenUnavailable(
                f"cannot mint the function's token ({error.status}: {error}){fix}"
            ) from None
        except (OSError, ValueError) as error:
            raise TokenUnavailable(
                f"cannot mint the function's token: {type(error).__name__}"
            ) from None
        token = str((answer.get("status") or {}).get("token") or "")
        if not token or not all(0x21 <= ord(char) <= 0x7E for char in token):
            raise TokenUnavailable("the apiserver's TokenRequest answer holds no usable token")
        return token
