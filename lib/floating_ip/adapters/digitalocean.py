"""The function's thin DigitalOcean client over pydo: JSON in and out, errors by kind.

pydo returns documented error statuses (404, some 400s) as plain dicts and raises for the
rest; every call here goes through :func:`_call`, which sees the status either way and turns
it into data or into an error of the right kind. azure-core's own retries are off: the
function retries inside its deadline (``floating_ip.retry``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydo
from azure.core.exceptions import AzureError, HttpResponseError

from floating_ip.errors import PermanentError, TransientError
from floating_ip_common.retry_after import parse_retry_after

JSON = dict[str, Any]
PAGE_SIZE = 200
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


class NotFound(PermanentError):
    """The object does not exist (404)."""


class TokenRefused(PermanentError):
    """The token is not valid (401) or lacks the scope the call needs (403)."""


class LimitReached(PermanentError):
    """The account's limit on the resource is reached. DigitalOcean documents no text for it:
    a 422 whose message names a limit (or a maximum) is taken for it."""


class DigitalOcean:
    def __init__(self, token: str, api_url: str) -> None:
        self._client = pydo.Client(
            token,
            endpoint=api_url,
            retry_total=0,
            connection_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )

    def close(self) -> None:
        self._client.close()

    # --- reads --------------------------------------------------------------------------------

    def reserved_ips(self) -> list[JSON]:
        return self._all_pages("reserved_ips", self._client.reserved_ips.list)

    def firewalls(self) -> list[JSON]:
        return self._all_pages("firewalls", self._client.firewalls.list)

    def cluster(self, cluster_id: str) -> JSON:
        reply = _call("get cluster", self._client.kubernetes.get_cluster, cluster_id)
        return dict(reply["kubernetes_cluster"])

    def action(self, action_id: int) -> JSON:
        return dict(_call("get action", self._client.actions.get, action_id)["action"])

    # --- writes -------------------------------------------------------------------------------

    def assign(self, ip: str, droplet_id: int) -> JSON:
        reply = _call(
            f"assign {ip}",
            self._client.reserved_ips_actions.post,
            ip,
            {"type": "assign", "droplet_id": droplet_id},
        )
        return dict(reply["action"])

    def unassign(self, ip: str) -> JSON:
        reply = _call(
            f"unassign {ip}", self._client.reserved_ips_actions.post, ip, {"type": "unassign"}
        )
        return dict(reply["action"])

    def create_reserved_ip(self, droplet_id: int) -> tuple[JSON, int | None]:
        """A new reserved IP for the droplet (in its region), and the id of the action
        assigning it (``None``: none was linked): the IP answers unassigned and locked until
        that action completes."""
        reply = _call(
            f"create a reserved IP for droplet {droplet_id}",
            self._client.reserved_ips.create,
            {"droplet_id": droplet_id},
        )
        actions = (reply.get("links") or {}).get("actions") or [{}]
        action_id = actions[0].get("id")
        return dict(reply["reserved_ip"]), action_id if isinstance(action_id, int) else None

    def delete_reserved_ip(self, ip: str) -> None:
        _call(f"delete reserved IP {ip}", self._client.reserved_ips.delete, ip)

    def create_firewall(self, body: JSON) -> JSON:
        return dict(_call("create firewall", self._client.firewalls.create, body)["firewall"])

    def update_firewall(self, firewall_id: str, body: JSON) -> JSON:
        reply = _call("update firewall", self._client.firewalls.update, firewall_id, body)
        return dict(reply["firewall"])

    def delete_firewall(self, firewall_id: str) -> None:
        _call("delete firewall", self._client.firewalls.delete, firewall_id)

    # --- plumbing -----------------------------------------------------------------------------

    def _all_pages(self, key: str, method: Callable[..., Any]) -> list[JSON]:
        items: list[JSON] = []
        page = 1
        while True:
            reply = _call(f"list {key}", method, per_page=PAGE_SIZE, page=page)
            batch = list(reply.get(key) or [])
            items.extend(batch)
            total = int((reply.get("meta") or {}).get("total", len(items)))
            if not batch or len(items) >= total:
                return items
            page += 1


def _call(what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
    def with_status(pipeline_response: Any, body: Any, _headers: Any) -> tuple[int, Any]:
        return int(pipeline_response.http_response.status_code), body

    try:
        status, body = method(*args, cls=with_status, **kwargs)
    except HttpResponseError as error:
        raise _classify(what, error) from None
    except AzureError as error:  # connection refused, reset, timeouts
        raise TransientError(f"digitalocean {what}: {type(error).__name__}") from None
    if status == 404:
        raise NotFound(f"digitalocean {what}: 404 {_message(body)}")
    if status >= 400:
        raise refusal(f"digitalocean {what}: {status} {_message(body)}", status, body)
    return dict(body or {})


def _classify(what: str, error: HttpResponseError) -> Exception:
    status = int(error.status_code or 0)
    body: Any = None
    headers: Any = {}
    response: Any = error.response
    if response is not None:
        headers = response.headers
        try:
            body = response.json()
        except ValueError:
            body = None
    message = f"digitalocean {what}: {status} {_message(body) or error.reason}"
    if status == 429 or status >= 500:
        return TransientError(message, parse_retry_after((headers or {}).get("retry-after")))
    if status == 422 and "pending" in _message(body).lower():
        return TransientError(message)  # an earlier action is still running: wait for it
    return refusal(message, status, body)


def refusal(message: str, status: int, body: Any) -> PermanentError:
    """A 4xx answer as the error of its kind: the token's, the account's limit, or other."""
    if status == 401:
        return TokenRefused(message + " (check DIGITALOCEAN_TOKEN)")
    if status == 403:
        return TokenRefused(message + " (the token lacks a scope this call needs)")
    text = _message(body).lower()
    if status == 422 and ("limit" in text or "maximum" in text):
        return LimitReached(message)
    return PermanentError(message)


def _message(body: Any) -> str:
    return str(body.get("message", "")) if isinstance(body, dict) else ""
