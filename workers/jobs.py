"""What a running job may use: the worker's connections, handed over explicitly.

RQ calls job functions by dotted path with their JSON arguments only. The worker owns
one :class:`JobContext` (settings, the queue Redis with the jobs' markers, the state
Redis with the audit journal, the SQL engine, an HTTP session, a Twilio client factory,
a clock) and attaches it to each job it executes
(:class:`ContextJob`); a job function reads it with :func:`current_context`. Tests build
the context with a local Twilio endpoint and pass it to :func:`workers.main.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
import requests
import sqlalchemy as sa
from rq import get_current_job
from rq.job import Job
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.config import Settings
from ivr.store.audit import AuditStore
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import close_client

TwilioFactory = Callable[[Settings], Client]
# Twilio's client has no timeout by default; a hung request would block the worker.
TWILIO_TIMEOUT_S = 10.0


def default_twilio_client(settings: Settings) -> Client:
    """A Twilio REST client for ``[twilio] account_sid`` / ``auth_token``."""
    http = TwilioHttpClient(timeout=TWILIO_TIMEOUT_S)
    return Client(settings.twilio.account_sid, settings.twilio.auth_token, http_client=http)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobContext:
    """The dependencies of every job, created once per worker process."""

    settings: Settings
    redis: redis.Redis  # the queue Redis: rq, and the jobs' markers
    link: Link  # the state Redis: the audit journal
    engine: sa.Engine
    http: requests.Session
    twilio_factory: TwilioFactory = default_twilio_client
    clock: Callable[[], datetime] = field(default=_utc_now)

    @property
    def keys(self) -> KeyLayout:
        """Key names for ``[redis] key_prefix``."""
        return KeyLayout(self.settings.redis.key_prefix)

    @property
    def audit(self) -> AuditStore:
        """The audit trail in the PIN store's database."""
        return AuditStore(self.engine)

    def twilio(self) -> Client:
        """A Twilio client (built per use: cheap, and it holds no connection of its own)."""
        return self.twilio_factory(self.settings)

    def close(self) -> None:
        """Release the pooled connections."""
        self.http.close()
        self.engine.dispose()
        if self.redis is not self.link.client:
            close_client(self.redis)
        self.link.close()


def build_context(
    settings: Settings,
    client: redis.Redis,
    link: Link,
    *,
    twilio_factory: TwilioFactory = default_twilio_client,
    http: requests.Session | None = None,
) -> JobContext:
    """A context over ``client`` (queue) and ``link`` (state) with a fresh engine and HTTP
    session; creates the audit tables."""
    audit = AuditStore.from_url(settings.pin_store.url, settings.pin_store.timeout_s)
    return JobContext(
        settings=settings,
        redis=client,
        link=link,
        engine=audit.engine,
        http=http or requests.Session(),
        twilio_factory=twilio_factory,
    )


class ContextJob(Job):
    """An rq job that carries the executing worker's context (never stored in Redis)."""

    context: JobContext | None = None


def current_context() -> JobContext:
    """The context of the job being executed; RuntimeError outside an IVR worker."""
    job = get_current_job()
    context = getattr(job, "context", None)
    if not isinstance(context, JobContext):
        raise RuntimeError("this job must run in the IVR worker (ivr worker)")
    return context
