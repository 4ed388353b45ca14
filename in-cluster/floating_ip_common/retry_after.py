"""The one reading of an HTTP ``Retry-After`` header, for the function's two adapters and the
forwarder (standard library only: the forwarder's image ships this file beside contract.py).

RFC 9110 §10.2.3: the value is either delay-seconds or an HTTP-date. What a server sends is
a hint, so a broken one is ignored (``None``: the caller's own backoff applies), a date in the
past means "now", and no value parks the caller longer than ``cap``.
"""

from __future__ import annotations

import email.utils
import re
import time
from datetime import UTC

MAX_RETRY_AFTER = 600.0
"""Seconds; a larger hint (or a date far ahead) is read as this."""
_SECONDS = re.compile(r"\d+(\.\d+)?")
"""RFC 9110 allows digits only; a fraction is accepted, as some servers send one."""


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from ``now`` (epoch seconds, default the clock), at most ``cap``;
    ``None`` when the header is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    seconds: float | None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        seconds = _seconds_until(text, time.time() if now is None else now)
    if seconds is None:
        return None
    return min(max(0.0, seconds), cap)  # a number too long for a float is inf: the cap


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and obsolete forms: HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now
