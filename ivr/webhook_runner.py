"""Run each voice webhook's work against its deadline: the answer never waits longer.

The work runs on a thread of a small pool while the request's thread waits for it until
the deadline (``[server] webhook_deadline_s``). Past it, the request's thread answers
with the late answer (route the caller as not identified, reason ``unavailable``) and
expires the deadline, which aborts the worker's SQL (:mod:`ivr.store.sql_cancel`) and
tells it to save that outcome instead of its own (:mod:`ivr.deadline`). Work that
committed its save before the deadline is waited for a moment longer: its save is under
way and is what the caller must hear.

The pool is bounded; work queued behind a full pool runs late, finds its deadline
expired and does no I/O but the save of the late outcome.

The deadline counts from when the request arrived where the server knows it
(:data:`ivr.deadline.QUEUED_AT`, set by the production worker :mod:`ivr.serving`), else from now. A
request that already waited in the server's queue for more than
:data:`SHED_AFTER_FRACTION` of the deadline is *shed*: answered at once with the late
answer, its work not started. Under overload that keeps every answer within the
deadline (the queue stops growing once what it holds is answered cheaply) instead of
answering everyone seconds late; its state stays at the step before (as for a request
that never arrived) until the call's next webhook or status callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from ivr.deadline import Deadline
from ivr.store.sql_cancel import Canceller

log = logging.getLogger("ivr.webhook_runner")

T = TypeVar("T")

# Threads doing webhook work per process: above gunicorn's threads per worker (8 in the
# documented line), so that work stuck until cancelled does not delay new webhooks.
POOL_THREADS = 32
# A committed save still running at the deadline gets this long: it had its reserve (the
# save's Redis reads end where only the observers' share is left, and their writes are
# bounded by the socket timeout), so this is only scheduling slack.
COMMITTED_GRACE_S = 0.3
# A request that waited longer than this share of the deadline before the app saw it is
# answered at once (shed): what is left would not be enough for the work under the load
# that made it wait.
SHED_AFTER_FRACTION = 0.5
SHED_LOG_INTERVAL_S = 1.0
# The pool's threads are named "<prefix>_<n>" (the bench counts their Redis round trips).
THREAD_PREFIX = "webhook"


class WebhookRunner:
    """Runs work under a deadline of ``seconds``; one per process, shared by all threads."""

    def __init__(
        self,
        seconds: float,
        canceller: Canceller,
        *,
        threads: int = POOL_THREADS,
        on_late: Callable[[], None] = lambda: None,
        on_shed: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_late`` hears of each answer given at the deadline, ``on_shed`` of each
        request shed (metrics count them)."""
        self.seconds = seconds
        self._canceller = canceller
        self._on_late = on_late
        self._on_shed = on_shed
        self._lock = threading.Lock()
        self._shed_since_log = 0
        self._shed_logged = float("-inf")
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=THREAD_PREFIX)

    def run(
        self, work: Callable[[Deadline], T], late: Callable[[], T], arrived: float | None = None
    ) -> T:
        """``work(deadline)``'s result if it is ready in time, else ``late()``; the
        deadline counts from ``arrived`` (a ``time.monotonic()`` instant) when given.

        Exceptions of ``work`` are raised here, in the caller's thread.
        """
        deadline = Deadline(self.seconds, start=arrived)
        if deadline.remaining() < self.seconds * (1 - SHED_AFTER_FRACTION):
            self._shed()
            return late()
        future = self._pool.submit(self._task, work, deadline)
        try:
            return future.result(timeout=deadline.remaining())
        except FutureTimeout:
            pass
        if not deadline.expire():  # it committed first: its save is the answer
            try:
                return future.result(timeout=COMMITTED_GRACE_S)
            except FutureTimeout:
                log.error("a committed webhook save missed its deadline; answered as late")
                self._on_late()
                return late()
        log.warning("webhook work passed its %.1f s deadline; answered as late", self.seconds)
        self._on_late()
        return late()

    def _shed(self) -> None:
        # Overload sheds many requests a second: one log line a second says how many.
        self._on_shed()
        now = time.monotonic()
        with self._lock:
            self._shed_since_log += 1
            if now - self._shed_logged < SHED_LOG_INTERVAL_S:
                return
            count, self._shed_since_log, self._shed_logged = self._shed_since_log, 0, now
        log.warning("%d webhook(s) shed: they waited over %.0f %% of the %.1f s deadline "
                    "before the app saw them (overload)", count, SHED_AFTER_FRACTION * 100,
                    self.seconds)  # fmt: skip

    def close(self) -> None:
        """Stop taking work; running work finishes on its own (it is bounded)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _task(self, work: Callable[[Deadline], T], deadline: Deadline) -> T:
        ident = threading.get_ident()
        deadline.on_expire(lambda: self._canceller.cancel(ident))
        try:
            return work(deadline)
        finally:
            deadline.finish()
            self._canceller.clear(ident)
