"""Failure kinds, by what the caller should do about them (kopf's lesson: retry semantics
live in the exception type, not in flags)."""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of every error the function reports."""


class FunctionConfigError(ReconcileError):
    """A setting is missing or malformed; names the setting. Nothing was written."""


class PermanentError(ReconcileError):
    """Retrying the same call cannot help (bad request, forbidden, not found)."""


class TransientError(ReconcileError):
    """A dependency failed in a way that may pass (429, 5xx, timeouts, refused connections).

    ``retry_after`` is the dependency's own hint in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(TransientError):
    """A write lost an optimistic-concurrency race (409): observe again and re-plan."""


class OutOfTime(TransientError):
    """The time the platform leaves ran out before the work was done."""
