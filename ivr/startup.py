"""Start-up work that needs a dependency, done as soon as the dependency answers.

Only bad configuration may stop the service from starting. A Redis, PostgreSQL or
SQLite file that does not answer yet must not: a gunicorn worker that fails to boot
makes the master shut down altogether, and Twilio then hears connection refused
instead of the service routing callers as not identified. So what start-up would do
with a dependency (create missing tables) is tried once at start and, if the dependency
is down, again every :data:`RETRY_S` by a background thread (and by each ``/readyz``)
until it is done. Meanwhile ``/readyz`` says not ready and webhooks route callers as
``unavailable``, as they do for any outage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from ivr.exceptions import DependencyError

log = logging.getLogger("ivr.startup")

RETRY_S = 2.0


class Deferred:
    """Named start-up tasks, each retried until it has run once without DependencyError."""

    def __init__(self, tasks: Mapping[str, Callable[[], None]], retry_s: float = RETRY_S) -> None:
        self._tasks = dict(tasks)
        self._retry_s = retry_s
        self._failed: set[str] = set()  # tasks that failed at least once
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> tuple[str, ...]:
        """The tasks not done yet."""
        with self._lock:
            return tuple(self._tasks)

    def attempt(self) -> DependencyError | None:
        """Try every pending task once; the first failure (None when all are done)."""
        with self._lock:
            first: DependencyError | None = None
            for name, task in list(self._tasks.items()):
                try:
                    task()
                except DependencyError as exc:
                    first = first or exc
                    self._failed.add(name)
                    continue
                del self._tasks[name]
                if name in self._failed:  # a recovery is news; the usual start is not
                    log.info("start-up task done: %s", name)
            return first

    def retry_in_background(self) -> None:
        """Retry the pending tasks in a daemon thread until they are done (or close())."""
        if not self.pending or self._thread is not None:
            return
        log.warning("started without %s; retrying every %.0f s", ", ".join(self.pending),
                    self._retry_s)  # fmt: skip
        self._thread = threading.Thread(target=self._loop, name="ivr-startup", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop retrying."""
        self._stop.set()

    def _loop(self) -> None:
        while self.pending and not self._stop.wait(self._retry_s):
            self.attempt()
