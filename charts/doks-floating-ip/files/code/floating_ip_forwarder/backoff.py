"""What to do after a POST to the function: done, retry soon, or retry much later.

- 2xx: delivered.
- 429, 5xx, a timeout or a broken connection: transient; retry with exponential backoff and
  jitter, or after the ``Retry-After`` the function asked for.
- any other 4xx (400 malformed, 401 wrong secret, 404 wrong URL): the configuration or the
  deployment is wrong. Retrying fast cannot help, giving up would lose the change once it is
  fixed: retry after a long fixed delay (and the caller logs the cause as an error).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    REJECTED = "rejected"


REJECTION_CAUSES = {
    400: "the function rejected the event as malformed (400): versions out of step?",
    401: "the function refused the secret (401): WEB_SECRET must equal its webSecure secret",
    403: "the function refused the call (403): WEB_SECRET must equal its webSecure secret",
    404: "no function at FUNCTION_URL (404): check the URL and that it is deployed",
}


def classify(status: int | None) -> Outcome:
    """``status`` is ``None`` when no answer came (connection failed, timed out)."""
    if status is None or status == 429 or status >= 500:
        return Outcome.TRANSIENT
    if 200 <= status < 300:
        return Outcome.DELIVERED
    return Outcome.REJECTED


def rejection_cause(status: int) -> str:
    return REJECTION_CAUSES.get(status, f"the function answered {status}")


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    rejected_delay: float = 300.0
    max_retry_after: float = 600.0
    """A ``Retry-After`` beyond this is treated as this (a broken header must not park the
    event for hours)."""

    def delay(
        self, outcome: Outcome, attempt: int, retry_after: float | None, rand: float
    ) -> float:
        """Seconds before retry number ``attempt + 1``; ``rand`` is uniform in [0, 1)."""
        if outcome is Outcome.REJECTED:
            return self.rejected_delay * (0.9 + 0.2 * rand)
        if retry_after is not None:
            # The server knows when it will be back: neither earlier nor much later.
            return min(retry_after, self.max_retry_after) * (1 + 0.1 * rand)
        ceiling = min(self.cap, self.base * self.factor ** min(attempt, 32))
        return ceiling / 2 + ceiling / 2 * rand  # "equal jitter": spread, never near zero
