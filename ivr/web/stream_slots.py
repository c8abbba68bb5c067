"""Admission of the console's event streams, so that they never starve the webhooks.

A stream holds a server thread (gunicorn ``gthread``) for minutes; a process has only
``--threads`` of them, and Twilio's webhooks need them too. So a process admits at most
``[console] max_streams`` streams at once, and at most ``max_streams_per_session`` of
one console session (an agent's board and call page; one agent opening many tabs must
not take them all). A stream beyond either bound is answered at once with an empty SSE
response that tells the browser to retry later: it holds no thread. Keep
``max_streams`` below gunicorn's ``--threads``; the threads above it are the webhooks'.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable


class StreamSlots:
    """Counts the open streams of this process, in total and per session; thread-safe."""

    def __init__(self, total: int, per_session: int) -> None:
        self.total = total
        self.per_session = per_session
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        """Streams open now."""
        with self._lock:
            return sum(self._open.values())

    def acquire(self, session_id: str) -> Callable[[], None] | None:
        """A slot for a stream of ``session_id``: its release function (idempotent), or
        None when the process or the session has its bound of streams open."""
        with self._lock:
            if sum(self._open.values()) >= self.total:
                return None
            if self._open[session_id] >= self.per_session:
                return None
            self._open[session_id] += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._open[session_id] -= 1
                if self._open[session_id] <= 0:
                    del self._open[session_id]

        return release
