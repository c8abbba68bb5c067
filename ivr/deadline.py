"""A webhook's deadline, shared by the thread that answers Twilio and the one at work.

Twilio waits 15 s for an answer and then plays its error (or takes the fallback URL):
a webhook must answer within ``[server] webhook_deadline_s`` whatever a dependency
does. The work runs in another thread (:mod:`ivr.webhook_runner`); the two meet here:

- the worker calls :meth:`Deadline.commit` before it writes the call's new state: from
  then on its answer is the one Twilio gets, so it needs time left for the save;
- the answering thread calls :meth:`Deadline.expire` when time is up: unless the worker
  committed first, the caller is routed as ``unavailable`` and the worker's late result
  is discarded — it records that outcome instead of its own;
- :meth:`Deadline.finish` ends the race: the worker is done.

Whichever of commit and expire comes first wins; both happen under one lock. Expiring
runs the cancel hook (e.g. aborting the worker's SQL statement, so its thread and
connection come back at once instead of after the dependency does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum


class Phase(str, Enum):
    """Where the race between the worker and the deadline stands."""

    RUNNING = "running"
    COMMITTED = "committed"
    EXPIRED = "expired"
    FINISHED = "finished"


class Deadline:
    """The end of one webhook's time; thread-safe."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.end = clock() + seconds
        self._lock = threading.Lock()
        self._phase = Phase.RUNNING
        self._cancel: Callable[[], None] | None = None

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def expired(self) -> bool:
        """The answer went out without this work's result: discard it."""
        return self._phase is Phase.EXPIRED

    def remaining(self) -> float:
        """Seconds left (0 when past)."""
        return max(self.end - self._clock(), 0.0)

    def commit(self, reserve_s: float) -> bool:
        """Claim the answer for the worker if at least ``reserve_s`` (its save) is left;
        False when the deadline expired or is too close: then it counts as expired."""
        with self._lock:
            if self._phase is Phase.RUNNING and self.remaining() >= reserve_s:
                self._phase = Phase.COMMITTED
                return True
            if self._phase is Phase.RUNNING:
                self._phase = Phase.EXPIRED
            return self._phase is Phase.COMMITTED

    def expire(self) -> bool:
        """Give up on the worker unless it committed or finished; True if it was given up
        (the cancel hook has then run)."""
        with self._lock:
            if self._phase is not Phase.RUNNING:
                return self._phase is Phase.EXPIRED
            self._phase = Phase.EXPIRED
            if self._cancel is not None:
                self._cancel()
            return True

    def finish(self) -> None:
        """The worker is done: expiring from now on cancels nothing."""
        with self._lock:
            self._cancel = None
            if self._phase is not Phase.EXPIRED:
                self._phase = Phase.FINISHED

    def on_expire(self, cancel: Callable[[], None]) -> None:
        """Run ``cancel`` (quick, non-blocking) if the deadline expires before finish()."""
        with self._lock:
            self._cancel = cancel


class Unbounded(Deadline):
    """No deadline (the CLI, jobs, tests of the flow): stateless, every commit succeeds,
    so one instance (:data:`UNBOUNDED`) serves everyone."""

    def __init__(self) -> None:
        super().__init__(float("inf"))

    def remaining(self) -> float:
        return float("inf")

    def commit(self, reserve_s: float) -> bool:
        return True

    def expire(self) -> bool:
        return False

    def finish(self) -> None:
        pass

    def on_expire(self, cancel: Callable[[], None]) -> None:
        pass


UNBOUNDED = Unbounded()
