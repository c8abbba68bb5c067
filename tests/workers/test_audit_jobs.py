"""Audit jobs: every PIN attempt lands in the SQL audit trail once; a daily purge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import requests

from ivr.config import Settings
from ivr.jobs import QUEUE_AUDIT, RECORD_ATTEMPT, JobQueues
from ivr.services import Services
from ivr.store.audit import AuditStore
from ivr.store.pins import create_engine
from tests.conftest import ACCOUNTS, SINGLE_OWNER, UNKNOWN_NUMBER
from tests.redis_server import free_port
from tests.twilio_phone import Call
from tests.workers.conftest import Drain, queue
from workers import audit as audit_jobs
from workers.jobs import JobContext, build_context
from workers.main import IVRWorker, worker_connection

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(settings: Settings, services: Services) -> Iterator[AuditStore]:
    """The audit trail in the test PIN store's database."""
    audit = AuditStore(create_engine(settings.pin_store.url, 2.0))
    audit.create_tables()
    yield audit
    audit.close()


@pytest.fixture
def context(settings: Settings, services: Services) -> Iterator[JobContext]:
    """A job context like the worker's."""
    ctx = build_context(settings, redis.Redis.from_url(settings.redis.url))
    yield ctx
    ctx.close()


def test_every_attempt_is_audited_without_digits(
    phone: Phone, drain: Drain, store: AuditStore, redis_client: redis.Redis
) -> None:
    """Wrong, verified and unknown-account attempts each become one row; no PIN anywhere."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "000001", PIN_ANNA)
    stranger = phone(caller=UNKNOWN_NUMBER)
    stranger.walk("1", "299999#", "123123")
    for key in redis_client.scan_iter("rq:job:*"):
        for value in redis_client.hgetall(key).values():
            assert PIN_ANNA.encode() not in value and b"123123" not in value
    drain()
    records = list(store.export(LONG_AGO))
    assert [(r.call_sid, r.customer_number, r.caller, r.outcome) for r in records] == [
        (call.call_sid, "200001", SINGLE_OWNER, "wrong"),
        (call.call_sid, "200001", SINGLE_OWNER, "verified"),
        (stranger.call_sid, "299999", UNKNOWN_NUMBER, "wrong"),
    ]
    for record in records:
        assert PIN_ANNA not in str(record) and "123123" not in str(record)


def test_rerun_of_an_attempt_job_adds_no_row(
    drain: Drain, store: AuditStore, services: Services
) -> None:
    """The same attempt enqueued again (as a retry would run it) is recorded once."""
    args = ["attempt-1", "CA" + "2" * 32, "200001", None, "wrong", "2026-11-01T10:00:00Z"]
    queues = JobQueues(services.redis)
    assert queues.enqueue(QUEUE_AUDIT, RECORD_ATTEMPT, args, "audit-attempt-1", 1)
    assert not queues.enqueue(QUEUE_AUDIT, RECORD_ATTEMPT, args, "audit-attempt-1", 1)
    assert queues.enqueue(QUEUE_AUDIT, RECORD_ATTEMPT, args, "audit-attempt-1-again", 1)
    drain()
    assert store.count() == 1


def test_database_down_makes_the_job_retry(
    settings: Settings, services: Services, redis_client: redis.Redis
) -> None:
    """When the database fails, the audit job raises and RQ schedules a retry."""
    args = ["attempt-2", "CA" + "3" * 32, "200001", None, "wrong", "2026-11-01T10:00:00Z"]
    JobQueues(services.redis).enqueue(QUEUE_AUDIT, RECORD_ATTEMPT, args, "audit-attempt-2", 3)
    dead = create_engine(f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x", 0.5)
    connection = worker_connection(settings.redis)
    ctx = JobContext(settings, connection, dead, requests.Session())
    try:
        IVRWorker([QUEUE_AUDIT], connection, ctx, commands=False).work(burst=True)
    finally:
        ctx.close()
    scheduled = queue(redis_client, QUEUE_AUDIT).scheduled_job_registry
    today = datetime.now(UTC).date().isoformat()
    assert sorted(scheduled.get_job_ids()) == ["audit-attempt-2", f"audit-purge-{today}"]


def test_purge_is_enqueued_once_per_day(
    drain: Drain, settings: Settings, redis_client: redis.Redis
) -> None:
    """However often workers start, today's purge runs once; its marker expires."""
    drain()
    drain()
    today = datetime.now(UTC).date().isoformat()
    marker = audit_jobs.purge_marker(settings, today)
    assert 0 < redis_client.ttl(marker) <= audit_jobs.PURGE_MARKER_TTL_S
    finished = queue(redis_client, QUEUE_AUDIT).finished_job_registry.get_job_ids()
    assert finished == [f"audit-purge-{today}"]


def test_schedule_daily_purge_per_day(settings: Settings, redis_client: redis.Redis) -> None:
    """The first call of a day enqueues the purge, later calls that day do not."""
    day = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    assert audit_jobs.schedule_daily_purge(settings, redis_client, day)
    assert not audit_jobs.schedule_daily_purge(settings, redis_client, day + timedelta(hours=20))
    assert audit_jobs.schedule_daily_purge(settings, redis_client, day + timedelta(days=1))
    assert queue(redis_client, QUEUE_AUDIT).count == 2


@pytest.mark.parametrize("overrides", [{"audit": {"retention_days": 30}}])
def test_purge_respects_retention(context: JobContext, store: AuditStore) -> None:
    """Rows older than [audit] retention_days go, younger ones stay."""
    now = context.clock()
    store.record_attempt("CA1", "1", None, "wrong", now - timedelta(days=31), attempt_id="old")
    store.record_attempt("CA1", "1", None, "wrong", now - timedelta(days=29), attempt_id="new")
    assert audit_jobs.purge_expired(context) == 1
    assert [r.at for r in store.export(LONG_AGO)] == [now - timedelta(days=29)]
