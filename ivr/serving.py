"""The production server's worker: gunicorn's gthread worker, noting when each request
became ready to be served.

Under overload, webhooks wait in gunicorn's queue (for a worker thread) before the app
sees them, and a deadline that started only when the app did could not see that wait:
at twice the capacity most answers came seconds after the webhook deadline. This worker
notes the moment a request's connection was handed to the thread pool (new, or a
keep-alive connection that became readable) and puts it into the WSGI environ as
:data:`~ivr.deadline.QUEUED_AT` (a ``time.monotonic()`` instant of this process), so
that the webhook deadline counts from there (:mod:`ivr.webhook_runner`). Run it with
``gunicorn --worker-class ivr.serving.ThreadWorker …`` (README, Production).

Only gunicorn's ``init_process``, ``enqueue_req``, ``handle`` and ``load_wsgi`` are
overridden, each calling the original; without this worker (another server) the
deadline starts when the app sees the request, as before.

The wait is only visible for connections the worker accepted: gunicorn 27's gthread
accepts up to ``--worker-connections`` per worker and queues each at once; beyond that
they wait in the kernel's listen backlog, where nothing can see or shed them (at twice
the capacity with the default 1,000, most answers came late or never, bench/README.md).
The production line therefore allows 10,000, and this worker raises its open-file
limit to match (each connection is a descriptor; the usual soft limit is 1,024).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.workers import gthread  # type: ignore[import-untyped]

from ivr.deadline import QUEUED_AT

# Descriptors a worker needs beside its connections: Redis and SQL pools, logs, pipes.
FILES_BESIDE_CONNECTIONS = 256

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gthread, plus :data:`~ivr.deadline.QUEUED_AT` in every request's environ."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Which request the current pool thread is serving: the queue time of the
        # connection handed to it (set in handle, read when the app is called).
        self._serving = threading.local()

    def init_process(self) -> None:
        # Before the worker's loop starts accepting: one descriptor per connection, plus
        # the app's own (Redis and SQL pools, logs).
        wanted: int = getattr(self, "worker_connections")  # noqa: B009 - untyped base
        allowed = allow_files(wanted + FILES_BESIDE_CONNECTIONS)
        fits = connections_within(allowed, wanted, self.cfg.threads)
        if fits < wanted:
            # An accept past the limit fails with EMFILE, which ends gthread's loop and
            # the worker: take fewer, and let the rest wait in the backlog instead.
            self.log.warning(
                "open-file limit %d allows %d connections per worker, not "
                "--worker-connections %d: beyond them webhooks wait unseen in the listen "
                "backlog (not shed); raise the hard limit (e.g. systemd LimitNOFILE)",
                allowed, fits, wanted,
            )  # fmt: skip
            setattr(self, "worker_connections", fits)  # noqa: B010 - untyped base
            setattr(self, "max_keepalived", fits - self.cfg.threads)  # noqa: B010
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: WSGIApp = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn, untyped
        self.wsgi = stamped(app, self._serving)

    def enqueue_req(self, conn: Any) -> None:
        # Runs on the worker's main thread, once per request handed to the pool.
        conn.ivr_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        self._serving.queued_at = getattr(conn, "ivr_queued_at", None)
        try:
            return super().handle(conn)
        finally:
            self._serving.queued_at = None


def allow_files(count: int) -> int:
    """Raise this process's soft open-file limit towards ``count`` (never above the hard
    limit, never lowering it); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= count:
        return soft if soft != resource.RLIM_INFINITY else count
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return max(wanted, soft)


def connections_within(files: int, wanted: int, threads: int) -> int:
    """How many of ``wanted`` connections an open-file limit of ``files`` leaves room for
    beside the app's own descriptors (at least one per thread)."""
    return max(min(wanted, files - FILES_BESIDE_CONNECTIONS), threads)


def stamped(app: WSGIApp, serving: threading.local) -> WSGIApp:
    """``app``, with the serving thread's queue time in each environ."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # The first request of a hand-over only: an HTTP/2 connection serves several
        # streams in one, and its later streams were not waiting since the hand-over.
        environ[QUEUED_AT] = getattr(serving, "queued_at", None)
        serving.queued_at = None
        return app(environ, start_response)

    return call
