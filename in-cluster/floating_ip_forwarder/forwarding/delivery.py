"""What to do after a POST to the function: done, retry soon, or retry much later.

- 2xx: delivered.
- 429, 5xx, a timeout or a broken connection: transient; retry with exponential backoff and
  jitter, or after the ``Retry-After`` the function asked for.
- any other 4xx (400 malformed, 401 wrong secret, 404 wrong URL): the configuration or the
  deployment is wrong. Retrying fast cannot help, giving up would lose the change once it is
  fixed: retry after a long fixed delay (and the caller logs the cause as an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from floating_ip_common import backoff, contract
from floating_ip_common.retry_after import MAX_RETRY_AFTER


class DeliveryOutcome(Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    REJECTED = "rejected"


REJECTION_CAUSES = {
    400: "the function rejected the event as malformed (400): versions out of step?",
    401: "the function refused the call (401): WEB_SECRET must equal its webSecure secret",
    403: "the function refused the call (403): WEB_SECRET must equal its webSecure secret",
    404: "no function at FUNCTION_URL (404): check the URL and that it is deployed",
    contract.UNSUPPORTED_SCHEMA_STATUS: (
        f"the function does not accept this forwarder's event schema version "
        f"{contract.EVENT_SCHEMA_VERSION} ({contract.UNSUPPORTED_SCHEMA_STATUS}): the function "
        "and the forwarder are more than one release apart; upgrade the older one"
    ),
    413: "the event is too large (413): in relay mode, narrow NAMESPACES",
}


def classify(status: int | None) -> DeliveryOutcome:
    """``status`` is ``None`` when no answer came (connection failed, timed out)."""
    if status is None or status == 429 or status >= 500:
        return DeliveryOutcome.TRANSIENT
    if 200 <= status < 300:
        return DeliveryOutcome.DELIVERED
    return DeliveryOutcome.REJECTED


def rejection_cause(status: int) -> str:
    return REJECTION_CAUSES.get(status, f"the function answered {status}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    rejected_delay: float = 300.0
    max_retry_after: float = MAX_RETRY_AFTER
    """A ``Retry-After`` beyond this is read as this (a broken header must not park the event
    for hours): the cap the dispatcher hands ``parse_retry_after``."""

    def delay(
        self, outcome: DeliveryOutcome, attempt: int, retry_after: float | None, rand: float
    ) -> float:
        """Seconds before retry number ``attempt + 1``; ``rand`` is uniform in [0, 1);
        ``retry_after`` as ``parse_retry_after`` read it (capped)."""
        if outcome is DeliveryOutcome.REJECTED:
            return self.rejected_delay * (0.9 + 0.2 * rand)
        if retry_after is not None:
            # The server knows when it will be back: neither earlier nor much later.
            return retry_after * (1 + 0.1 * rand)
        return backoff.equal_jitter(
            backoff.ceiling(attempt, self.base, self.cap, self.factor), rand
        )
