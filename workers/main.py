"""The worker entry point: ``ivr worker`` runs :func:`run`.

One :class:`IVRWorker` per process serves the CRM, notify and audit queues (or the ones
named). It is an rq ``SimpleWorker``: jobs run in the worker process itself instead of a
fork per job, so they reuse the worker's pooled Redis, SQL and HTTP connections — the
jobs are short I/O calls where a fork would cost more than the work. RQ's scheduler runs
alongside (``with_scheduler``): it is what moves retries waiting out their backoff back
onto the queues.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import redis
import requests
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from ivr.config import Settings
from ivr.exceptions import ConfigError, DependencyError
from ivr.jobs import QUEUE_AUDIT, QUEUES
from ivr.store.link import Link
from ivr.store.redis_client import close_client, open_client, open_link
from workers.audit import schedule_daily_purge
from workers.jobs import ContextJob, JobContext, TwilioFactory, build_context, default_twilio_client
from workers.journal import BLOCK_MS, JournalDrain, consumer_name, drain_all

log = logging.getLogger("workers.main")

# rq's default: a worker that stops heart-beating for this long counts as dead.
WORKER_TTL_S = 420
# rq blocks in BLPOP for up to WORKER_TTL_S - 15 s; the socket has to wait longer than
# that, unlike the web app's quarter-second sockets. Connecting still fails fast.
SOCKET_TIMEOUT_S = WORKER_TTL_S + 15
CONNECT_TIMEOUT_S = 5
# rq restarts its scheduler process (which moves retries out of their backoff) in the
# maintenance tasks when it died, e.g. on a Redis failover: every minute, not rq's ten.
MAINTENANCE_INTERVAL_S = 60
# A worker that lost its queue Redis starts again after this pause, doubled each time up
# to the cap (a failover takes seconds; an outage may take longer).
RECONNECT_PAUSE_S = 1.0
RECONNECT_CAP_S = 30.0
# The command listener's longest wait: a warm shutdown waits for it (see subscribe()).
PUBSUB_POLL_S = 1.0
# The journal's reads block for BLOCK_MS; its socket must outlast one.
JOURNAL_SOCKET_TIMEOUT_S = BLOCK_MS / 1000 + 5


def worker_connection(settings: Settings) -> redis.Redis:
    """The queue Redis for the worker, with timeouts fit for rq's blocking pops."""
    if not settings.queue_url():
        raise ConfigError(
            "config: [redis] url (or [queue] url) is not set; the worker takes its jobs from Redis"
        )
    return open_client(
        settings.queue_url(), settings.redis, key="[queue] url",
        socket_timeout_s=SOCKET_TIMEOUT_S, connect_timeout_s=CONNECT_TIMEOUT_S,
    )  # fmt: skip


def journal_link(settings: Settings) -> Link:
    """The state Redis for the audit journal, whose reads block up to a second."""
    return open_link(
        settings.redis, socket_timeout_s=JOURNAL_SOCKET_TIMEOUT_S,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )  # fmt: skip


class IVRWorker(SimpleWorker):
    """An rq worker that hands its :class:`JobContext` to each job and schedules purges."""

    # rq would log each job's call with its arguments (phone and customer numbers).
    log_job_description = False

    def __init__(
        self,
        queues: Sequence[str],
        connection: redis.Redis,
        context: JobContext,
        *,
        commands: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            list(queues), connection=connection, job_class=ContextJob,
            serializer=JSONSerializer, worker_ttl=WORKER_TTL_S,
            maintenance_interval=MAINTENANCE_INTERVAL_S, **kwargs,
        )  # fmt: skip
        self.context = context
        self.commands = commands
        # A warm shutdown was asked for (SIGTERM, SIGINT, `rq shutdown`): the loop may end.
        self.stopping = False

    def request_stop(self, signum: int, frame: Any) -> None:
        """rq's warm shutdown, remembered: the worker is not started again after it."""
        self.stopping = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def drop_listener(self) -> None:
        """Stop the command listener's thread without asking Redis: rq's teardown could
        not reach it when Redis failed first, and each restart would leave one behind."""
        thread, self.pubsub_thread = self.pubsub_thread, None
        if thread is None:
            return
        with suppress(Exception):  # best effort: the connection may be gone already
            thread.stop()
            self.pubsub.close()

    def subscribe(self) -> None:
        """Listen for rq's worker commands (``rq shutdown`` …) unless ``commands`` is off.

        As rq does, but the listener thread polls every PUBSUB_POLL_S instead of rq's 60 s:
        redis-py 8.2's ``PubSubWorkerThread.stop()`` joins the thread without a bound, so
        a warm shutdown waited up to a minute for it (seen after a failover)."""
        # A burst run is over in moments; its listener thread would only outlive it.
        if not self.commands:
            return
        self.log.info("Worker %s: subscribing to channel %s", self.name,
                      self.pubsub_channel_name)  # fmt: skip
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_S, daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )  # fmt: skip

    def unsubscribe(self) -> None:
        """Stop listening for commands, if listening."""
        if self.commands:
            super().unsubscribe()  # type: ignore[no-untyped-call]

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` with this worker's context attached."""
        if isinstance(job, ContextJob):
            job.context = self.context
        super().execute_job(job, queue)

    def run_maintenance_tasks(self) -> None:
        """rq's registry clean-up, plus enqueuing the daily audit purge when it is due."""
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        if QUEUE_AUDIT not in self.queue_names():
            return
        try:
            schedule_daily_purge(self.context.settings, self.connection, self.context.clock())
        except redis.RedisError as exc:
            # The next tick tries again; the worker keeps serving jobs meanwhile.
            log.warning("could not schedule the audit purge (%s)", type(exc).__name__)


def check_queues(queues: Sequence[str] | None) -> list[str]:
    """The queues to serve: all of them by default; ConfigError for an unknown name."""
    names = list(queues) if queues else list(QUEUES)
    for name in names:
        if name not in QUEUES:
            raise ConfigError(f"unknown queue {name!r}; choose from {', '.join(QUEUES)}")
    return names


def run(
    settings: Settings,
    queues: Sequence[str] | None = None,
    burst: bool = False,
    *,
    twilio_factory: TwilioFactory = default_twilio_client,
    http: requests.Session | None = None,
    with_scheduler: bool = True,
) -> bool:
    """Serve ``queues`` until stopped (or, with ``burst``, until they are empty).

    Returns whether any job ran or any journalled attempt was written. A worker of the
    audit queue also drains the audit journal: in a thread beside rq's loop, or with
    ``burst`` once before the jobs. ``twilio_factory`` and ``http`` replace the Twilio
    client and the CRM's HTTP session (tests point them at local servers).
    """
    names = check_queues(queues)
    connection = worker_connection(settings)
    link = journal_link(settings)
    try:
        context = _ready_context(
            burst, lambda: build_context(
                settings, connection, link, twilio_factory=twilio_factory, http=http
            ), connection,
        )  # fmt: skip
    except BaseException:
        close_client(connection)
        link.close()
        raise
    drain = JournalDrain(context) if QUEUE_AUDIT in names and not burst else None
    try:
        written = drain_all(context, consumer_name()) if QUEUE_AUDIT in names and burst else 0
        if drain is not None:
            drain.start()
        return _serve(names, context, burst, with_scheduler) or written > 0
    finally:
        if drain is not None:
            drain.stop()
        context.close()


def _ready_context(
    burst: bool, build: Callable[[], JobContext], connection: redis.Redis
) -> JobContext:
    """The jobs' context once the queue Redis and the audit database answer. A burst run
    fails at once with one clear error; a serving worker waits for them (a worker that
    exits during an outage leaves the jobs to pile up until someone restarts it)."""
    pause = RECONNECT_PAUSE_S
    while True:
        try:
            connection.ping()
            return build()
        except (redis.RedisError, DependencyError) as exc:
            if burst:
                raise
            log.warning("waiting for a dependency (%s); trying again in %.0f s",
                        str(exc).splitlines()[0][:200], pause)  # fmt: skip
        time.sleep(pause)
        pause = min(pause * 2, RECONNECT_CAP_S)


def _serve(names: list[str], context: JobContext, burst: bool, with_scheduler: bool) -> bool:
    """rq's loop; when the queue Redis goes away or fails (killed, failed over, out of
    memory, timed out), a new worker starts after a growing pause instead of the process
    exiting: the jobs wait in Redis meanwhile. Only a stop request ends a serving
    worker; a burst run fails instead (its caller wants to know)."""
    pause = RECONNECT_PAUSE_S
    while True:
        started = time.monotonic()
        worker: IVRWorker | None = None
        try:
            # Inside: creating a worker already talks to Redis (rq prepares for work).
            worker = IVRWorker(names, connection=context.redis, context=context,
                               commands=not burst)  # fmt: skip
            with _restored_signal_handlers():
                worked = worker.work(burst=burst, with_scheduler=with_scheduler)
            if burst or worker.stopping:
                return worked
            why = "rq's loop ended"  # rq quits its loop on a Redis timeout or an error
        except redis.RedisError as exc:  # killed, failed over, full (OOM), ...
            if burst:
                raise
            why = f"queue Redis lost ({type(exc).__name__})"
        finally:
            if worker is not None:
                worker.drop_listener()
        if time.monotonic() - started > RECONNECT_CAP_S:
            pause = RECONNECT_PAUSE_S  # it had been working: a new outage
        log.warning("%s; the worker starts again in %.0f s", why, pause)
        time.sleep(pause)
        pause = min(pause * 2, RECONNECT_CAP_S)


@contextmanager
def _restored_signal_handlers() -> Iterator[None]:
    # rq installs SIGINT/SIGTERM handlers for a warm shutdown; put back the caller's
    # afterwards (matters when run() is called in-process, e.g. by ivr dev or tests).
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
