"""A refused creation (``address: auto``): the adapter gives DigitalOcean's answer its kind,
and the apply step records the kind in the marker, so the Warning says what to do: free an
IP only for the account's limit, fix the token for a 401/403 (core/allocation.py words it)."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from floating_ip.adapters.digitalocean import LimitReached, TokenRefused, refusal
from floating_ip.apply import Applier
from floating_ip.core.model import Allocation, ObjectRef, Plan
from floating_ip.errors import PermanentError
from floating_ip_common import contract
from tests.function.fakes import FakeDeadline, FakeDigitalOcean, FakeKube, Journal

CREATE = "digitalocean create a reserved IP for droplet 102"
LIMIT = {"id": "unprocessable_entity", "message": "You have reached the limit of 3 reserved IPs"}


@pytest.mark.parametrize(
    ("status", "body", "kind", "marker"),
    [
        pytest.param(
            422, LIMIT, LimitReached, f"refused (limit): {CREATE}: 422", id="422-the-limit"
        ),
        pytest.param(
            422,
            {"id": "unprocessable_entity", "message": "Maximum number of reserved IPs reached"},
            LimitReached,
            f"refused (limit): {CREATE}: 422",
            id="422-a-maximum",
        ),
        pytest.param(
            401,
            {"id": "unauthorized", "message": "Unable to authenticate you."},
            TokenRefused,
            f"refused (token): {CREATE}: 401",
            id="401-a-token-not-valid",
        ),
        pytest.param(
            403,
            {"id": "forbidden", "message": "You are not authorized to perform this operation"},
            TokenRefused,
            f"refused (token): {CREATE}: 403",
            id="403-a-scope-the-token-lacks",
        ),
        pytest.param(
            422,
            {"id": "unprocessable_entity", "message": "droplet_id must be an integer"},
            PermanentError,
            f"refused: {CREATE}: 422",
            id="422-anything-else",
        ),
        pytest.param(400, None, PermanentError, f"refused: {CREATE}: 400", id="400-no-body"),
    ],
)
def test_a_refused_creation_records_the_kind_of_the_refusal(
    status: int, body: Any, kind: type[PermanentError], marker: str
) -> None:
    error = refusal(f"{CREATE}: {status} {(body or {}).get('message', '')}", status, body)
    assert type(error) is kind
    journal = Journal()
    journal.fail("create reserved ip", error)
    web = ObjectRef("apps", "web")
    plan = Plan(allocations=(Allocation(web, "uid-web", "41", 102, "node-b", (), marked=True),))
    Applier(FakeKube(journal), FakeDigitalOcean(journal), FakeDeadline(), dry_run=False).apply(plan)
    patches = [ast.literal_eval(call[2]) for call in journal.calls if call[0] == "patch"]
    written = patches[-1]["metadata"]["annotations"][contract.ALLOCATION]
    assert written.startswith(marker)
    assert written.endswith(str(error))
