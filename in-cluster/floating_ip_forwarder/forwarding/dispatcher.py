"""Sender threads around the coalescer: only while leading, one POST per key at a time.

Also schedules the periodic resync: one at the start of each leadership and then every
``resync_period`` after the last accepted one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from floating_ip_common.retry_after import parse_retry_after
from floating_ip_forwarder.forwarding import cloudevent
from floating_ip_forwarder.forwarding.coalescer import Coalescer, Taken
from floating_ip_forwarder.forwarding.delivery import (
    DeliveryOutcome,
    RetryPolicy,
    classify,
    rejection_cause,
)
from floating_ip_forwarder.forwarding.sender import Delivery, Sender
from floating_ip_forwarder.ops.metrics import ForwarderMetrics

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        coalescer: Coalescer[str],
        senders: list[Sender],
        *,
        cluster_id: str,
        resync_period: float,
        metrics: ForwarderMetrics,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.coalescer = coalescer
        self.senders = senders
        self.cluster_id = cluster_id
        self.resync_period = resync_period
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rand = rand
        self._cond = threading.Condition()
        self._leading = False
        self._stopping = False
        self._next_resync = 0.0
        self.threads = [
            threading.Thread(target=self._work, args=(s,), name=f"sender {i}", daemon=True)
            for i, s in enumerate(senders)
        ]

    # --- inputs (any thread) ------------------------------------------------------------------

    def touch(self, keys: Iterable[str]) -> None:
        with self._cond:
            if not self._leading:
                return  # a new leader starts with a resync: nothing to remember until then
            now = self.clock()
            for key in keys:
                self.coalescer.touch(key, now)
            self._changed()

    def set_leading(self, leading: bool) -> None:
        with self._cond:
            if leading == self._leading:
                return
            self._leading = leading
            self.coalescer.clear()
            if leading:
                self._next_resync = self.clock()  # resync at once
            self.metrics.leader.set(1 if leading else 0)
            self._changed()
        log.info("leadership " + ("acquired: sending" if leading else "lost: not sending"))

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for sender in self.senders:
            sender.abort()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return all(t.is_alive() for t in self.threads)

    # --- the sender loop ----------------------------------------------------------------------

    def _work(self, sender: Sender) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            event = cloudevent.build(
                taken.key,
                cluster_id=self.cluster_id,
                event_id=str(uuid.uuid4()),
                time=datetime.now(UTC),
            )
            self.metrics.delay.observe(taken.waited)
            if taken.attempt:
                self.metrics.retries.inc()
            delivery = sender.send(event)
            self._settle(taken, delivery)

    def _next(self) -> Taken[str] | None:
        with self._cond:
            while not self._stopping:
                now = self.clock()
                if self._leading and now >= self._next_resync:
                    self.coalescer.touch(cloudevent.RESYNC_KEY, now)
                    self._next_resync = now + self.resync_period
                taken = self.coalescer.take(now) if self._leading else None
                if taken is not None:
                    self._changed()
                    return taken
                self._cond.wait(self._wait_for(now))
            return None

    def _wait_for(self, now: float) -> float | None:
        if not self._leading:
            return None
        waits = [self._next_resync - now]
        wake = self.coalescer.wake_in(now)
        if wake is not None:
            waits.append(wake)
        return max(0.0, min(waits))

    def _settle(self, taken: Taken[str], delivery: Delivery) -> None:
        outcome = classify(delivery.status)
        kind = "resync" if taken.key == cloudevent.RESYNC_KEY else "service"
        delay = 0.0
        with self._cond:
            if self._stopping and outcome is not DeliveryOutcome.DELIVERED:
                return  # aborted by the shutdown: the next leader's resync covers it
            now = self.clock()
            if outcome is DeliveryOutcome.DELIVERED:
                self.coalescer.succeeded(taken)
                if kind == "resync":
                    self._next_resync = now + self.resync_period
            else:
                retry_after = parse_retry_after(
                    delivery.retry_after, cap=self.policy.max_retry_after
                )
                delay = self.policy.delay(outcome, taken.attempt, retry_after, self.rand())
                self.coalescer.failed(taken, now, delay)
            self._changed()
        fields: dict[str, object] = {"event": kind, "subject": taken.key, "status": delivery.status}
        if outcome is not DeliveryOutcome.DELIVERED:
            fields["retry_in"] = round(delay, 1)
        if outcome is DeliveryOutcome.DELIVERED:
            self.metrics.events_sent.inc(type=kind)
            self.metrics.last_success.set(time.time())
            log.info("event delivered", extra=fields)
        elif outcome is DeliveryOutcome.REJECTED and delivery.status is not None:
            self.metrics.failures.inc(reason=str(delivery.status))
            log.error(rejection_cause(delivery.status), extra=fields)
        else:
            reason = str(delivery.status) if delivery.status else "no answer"
            self.metrics.failures.inc(reason=reason)
            log.warning(
                "event not delivered, will retry",
                extra={**fields, "error": delivery.error, "attempt": taken.attempt + 1},
            )

    def _changed(self) -> None:
        """Under the lock: refresh the gauges and wake the senders."""
        self.metrics.queue_depth.set(self.coalescer.depth())
        self.metrics.in_flight.set(self.coalescer.in_flight())
        self._cond.notify_all()
