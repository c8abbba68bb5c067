"""Saves that must wait for Redis: what a caller was told when the step's own save failed.

A step whose save fails (the state Redis stalls or is down) still answers: the caller is
routed to an agent as not identified, reason ``unavailable``. The stored state, though,
stays at the step before, and the board would show the call "in IVR" until it expires.
:class:`Resaver` keeps such saves in memory and retries them on its own thread until
Redis answers, so the board and the screen-pop API catch up within about a second of
Redis returning.

What it holds is bounded (``limit`` calls, the oldest dropped first, and nothing older
than ``give_up_s``, after which the call state has expired anyway) and lives in this
process only: a process that exits during the outage loses its pending saves, and those
calls show as before (logged when dropped, counted by ``on_dropped``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ivr.exceptions import DependencyError

log = logging.getLogger("ivr.resave")

# How often pending saves are tried while Redis does not answer.
RETRY_S = 1.0
# Calls whose save may wait at once, per process: far above a hotline's calls per outage.
LIMIT = 10_000

# One pending save: returns once done (or no longer needed); DependencyError: try again.
Attempt = Callable[[], None]


class Resaver:
    """Retries pending saves on a thread of its own, started with the first one."""

    def __init__(
        self,
        *,
        retry_s: float = RETRY_S,
        limit: int = LIMIT,
        give_up_s: float = 24 * 3600.0,
        on_dropped: Callable[[], None] = lambda: None,
    ) -> None:
        self._retry_s = retry_s
        self._limit = limit
        self._give_up_s = give_up_s
        self._on_dropped = on_dropped
        self._pending: OrderedDict[str, tuple[float, Attempt]] = OrderedDict()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, call_sid: str, attempt: Attempt) -> None:
        """Run ``attempt`` until it succeeds; a later one for the same call replaces it."""
        with self._wake:
            if self._closed:
                return
            self._pending.pop(call_sid, None)
            self._pending[call_sid] = (time.monotonic(), attempt)
            while len(self._pending) > self._limit:
                self._drop(next(iter(self._pending)), "too many pending saves")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="resave", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        """How many saves wait for Redis."""
        with self._wake:
            return len(self._pending)

    def close(self) -> None:
        """Stop retrying; what is still pending is dropped (and logged)."""
        with self._wake:
            self._closed = True
            for call_sid in list(self._pending):
                self._drop(call_sid, "process stopping")
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._wake.wait_for(lambda: self._closed, self._retry_s):
                    return
                due = list(self._pending.items())
            self._try(due)

    def _try(self, due: list[tuple[str, tuple[float, Attempt]]]) -> None:
        for call_sid, (since, attempt) in due:
            if time.monotonic() - since > self._give_up_s:
                with self._wake:
                    self._drop(call_sid, "the call has expired")
                continue
            try:
                attempt()
            except DependencyError:
                return  # Redis does not answer yet: the others would fail alike.
            except Exception:  # a bug must not stop the others' saves
                log.exception("call=%s deferred save failed; dropped", call_sid)
            with self._wake:
                if self._pending.get(call_sid, (None, None))[1] is attempt:
                    del self._pending[call_sid]

    def _drop(self, call_sid: str, why: str) -> None:
        """Forget one pending save (the caller of this holds the lock)."""
        del self._pending[call_sid]
        log.warning("call=%s deferred save dropped: %s", call_sid, why)
        self._on_dropped()
