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

The worker's Redis rounds wait as long as the deadline allows, not a fixed socket
timeout: :meth:`Deadline.budget` gives each part of the work the time up to the
deadline minus what must still follow it (the save, the observers' writes), and the
store layer bounds its reads by that :class:`Budget`. A Redis slowed by a starved CPU is
waited for while there is time to use its answer; a frozen one costs the budget, never
more than the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

# The WSGI environ key under which the server (ivr.serving) says when the request was
# queued to be served: a time.monotonic() instant; the deadline counts from there.
QUEUED_AT = "ivr.queued_at"


class Phase(str, Enum):
    """Where the race between the worker and the deadline stands."""

    RUNNING = "running"
    COMMITTED = "committed"
    EXPIRED = "expired"
    FINISHED = "finished"


@dataclass(frozen=True)
class Budget:
    """Until when part of a webhook's work may wait on a dependency (``time.monotonic()``
    instant): what comes later needs the rest of the deadline."""

    until: float

    def left(self) -> float:
        """Seconds left (negative once spent)."""
        return self.until - time.monotonic()


def has_time(budget: Budget | None) -> bool:
    """True while ``budget`` is not spent (always, for no budget: no deadline)."""
    return budget is None or budget.left() > 0


class Deadline:
    """The end of one webhook's time; thread-safe."""

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        start: float | None = None,
    ) -> None:
        """``seconds`` from ``start`` (a ``clock()`` instant: when the request arrived),
        or from now."""
        self._clock = clock
        self.end = (clock() if start is None else start) + seconds
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

    def budget(self, reserve_s: float) -> Budget | None:
        """The time for work that must leave ``reserve_s`` of the deadline to what follows
        it; None when there is no deadline (each read is bounded by its socket timeout)."""
        return Budget(time.monotonic() + self.remaining() - reserve_s)

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

    def budget(self, reserve_s: float) -> Budget | None:
        return None

    def commit(self, reserve_s: float) -> bool:
        return True

    def expire(self) -> bool:
        return False

    def finish(self) -> None:
        pass

    def on_expire(self, cancel: Callable[[], None]) -> None:
        pass


UNBOUNDED = Unbounded()
