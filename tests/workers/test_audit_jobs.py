"""Audit jobs: every PIN attempt lands in the SQL audit trail once; a daily purge."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import requests

from ivr.config import Settings
from ivr.erasure import Eraser, account_pseudonym, caller_pseudonym
from ivr.exceptions import DependencyError
from ivr.jobs import QUEUE_AUDIT
from ivr.services import Services
from ivr.store.account_admin import AccountAdmin
from ivr.store.audit import AuditStore
from ivr.store.audit_journal import AuditJournal
from ivr.store.keys import JOURNAL_TTL_S, PURGE_MARKER_TTL_S
from ivr.store.pins import create_engine
from tests.conftest import ACCOUNTS, SINGLE_OWNER, UNKNOWN_NUMBER
from tests.redis_server import free_port
from tests.twilio_phone import Call
from tests.workers.conftest import Drain, add_attempt, queue
from workers import audit as audit_jobs
from workers.jobs import JobContext, build_context
from workers.journal import JournalDrain, drain_all, drain_once
from workers.journal import _row as journal_row
from workers.main import journal_link as worker_link

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
def journal(settings: Settings, services: Services) -> AuditJournal:
    """The audit journal the app writes to."""
    return services.journal


@pytest.fixture
def context(settings: Settings, services: Services) -> Iterator[JobContext]:
    """A job context like the worker's."""
    ctx = build_context(settings, redis.Redis.from_url(settings.redis.url), worker_link(settings))
    yield ctx
    ctx.close()


def test_every_attempt_is_audited_without_digits(
    phone: Phone, drain: Drain, store: AuditStore, redis_client: redis.Redis,
    journal: AuditJournal, services: Services,
) -> None:  # fmt: skip
    """Wrong, verified and unknown-account attempts each become one row; no PIN anywhere."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "000001", PIN_ANNA)
    stranger = phone(caller=UNKNOWN_NUMBER)
    stranger.walk("1", "299999#", "123123")
    assert journal.backlog() == 3
    for _, fields in redis_client.xrange(journal.key) or []:
        for value in (fields or {}).values():
            assert PIN_ANNA.encode() not in value and b"123123" not in value
    assert drain()
    assert journal.backlog() == 0
    records = list(store.export(LONG_AGO))
    # A number no account has is kept only as its keyed hash (it may be a mistyped PIN).
    unknown = "?" + services.hasher.subject("account", "299999")
    assert [(r.call_sid, r.customer_number, r.caller, r.outcome) for r in records] == [
        (call.call_sid, "200001", SINGLE_OWNER, "wrong"),
        (call.call_sid, "200001", SINGLE_OWNER, "verified"),
        (stranger.call_sid, unknown, UNKNOWN_NUMBER, "wrong"),
    ]
    for record in records:
        assert PIN_ANNA not in str(record) and "123123" not in str(record)


def test_journal_key_has_a_ttl(
    phone: Phone, redis_client: redis.Redis, journal: AuditJournal
) -> None:
    """The journal stream expires like a queued job if no worker ever drains it."""
    phone(caller=SINGLE_OWNER).walk("1", "000001")
    assert 0 < redis_client.ttl(journal.key) <= JOURNAL_TTL_S


def test_entry_written_twice_is_one_row(
    context: JobContext, store: AuditStore, services: Services, journal: AuditJournal
) -> None:
    """A worker that wrote its rows but died before acknowledging: the rerun adds nothing."""
    add_attempt(journal, services.link, "CA" + "2" * 32)
    impatient = AuditJournal(services.link, services.keys, claim_idle_ms=0)
    taken = impatient.read("dead-worker", 10)
    context.audit.record_attempts([row for row in map(journal_row, taken) if row is not None])
    assert store.count() == 1
    assert drain_once(context, "next-worker", journal=impatient) == 1
    assert store.count() == 1
    assert impatient.backlog() == 0


def test_database_down_leaves_the_entries_pending(
    settings: Settings, context: JobContext, store: AuditStore, services: Services,
    journal: AuditJournal,
) -> None:  # fmt: skip
    """When the database fails, the drain raises and the attempt waits to be claimed again."""
    add_attempt(journal, services.link, "CA" + "3" * 32)
    dead = create_engine(f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x", 0.5)
    down = JobContext(settings, context.redis, context.link, dead, requests.Session())
    try:
        with pytest.raises(DependencyError, match="(PIN|audit) store failed"):
            drain_once(down, "worker-a")
    finally:
        down.close()
    assert journal.backlog() == 1
    assert drain_once(context, "worker-b") == 0  # pending for worker-a, not idle long yet
    impatient = AuditJournal(services.link, services.keys, claim_idle_ms=0)
    assert drain_once(context, "worker-b", journal=impatient) == 1
    assert [r.call_sid for r in store.export(LONG_AGO)] == ["CA" + "3" * 32]


def test_malformed_entry_is_dropped_not_retried_forever(
    context: JobContext, store: AuditStore, redis_client: redis.Redis, journal: AuditJournal
) -> None:
    """An entry no app could have written is acknowledged and skipped with a warning."""
    redis_client.xadd(journal.key, {"c": "CA1", "a": "1", "f": "", "v": "maybe", "t": "x"})
    assert drain_once(context, "worker") == 1
    assert journal.backlog() == 0 and store.count() == 0


def test_drain_thread_writes_attempts_as_they_come(
    phone: Phone, context: JobContext, store: AuditStore
) -> None:
    """The worker's journal thread writes a new attempt within moments, and stops cleanly."""
    thread = JournalDrain(context)
    thread.start()
    try:
        phone(caller=SINGLE_OWNER).walk("1", "000001")
        deadline = time.monotonic() + 5
        while store.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.count() == 1
    finally:
        thread.stop()
    assert not thread.is_alive()


def test_purge_is_enqueued_once_per_day(
    drain: Drain, settings: Settings, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """However often workers start, today's purge runs once; its marker expires."""
    with caplog.at_level(logging.INFO, logger="workers.audit"):
        drain()
        drain()
    today = datetime.now(UTC).date().isoformat()
    marker = audit_jobs.purge_marker(settings, today)
    assert 0 < redis_client.ttl(marker) <= PURGE_MARKER_TTL_S
    runs = [r for r in caplog.records if r.getMessage().startswith("audit purge removed")]
    assert len(runs) == 1
    assert queue(redis_client, QUEUE_AUDIT).count == 0


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


def test_workers_leave_the_group_when_done(
    phone: Phone, context: JobContext, redis_client: redis.Redis, journal: AuditJournal
) -> None:
    """A drained or stopped reader leaves no consumer behind; one holding entries stays."""
    phone(caller=SINGLE_OWNER).walk("1", "000001")
    assert drain_all(context, "burst-reader") == 1
    thread = JournalDrain(context, "thread-reader")
    thread.start()
    time.sleep(0.2)
    thread.stop()
    assert redis_client.xinfo_consumers(journal.key, "audit-writers") == []
    add_attempt(journal, context.link, "CA" + "6" * 32)
    journal.read("holder", 10)  # read, never acknowledged
    assert not journal.leave("holder")
    names = [c["name"] for c in redis_client.xinfo_consumers(journal.key, "audit-writers")]
    assert names == [b"holder"]


def test_an_attempt_drained_after_its_account_was_erased_is_pseudonymised(
    context: JobContext, store: AuditStore, services: Services, journal: AuditJournal
) -> None:
    """An attempt still in the journal when its account is erased reaches SQL with the
    erasure's pseudonyms, not the customer number and caller in clear."""
    number, caller = ACCOUNTS[0][0], SINGLE_OWNER
    services.link.send(journal.entry("CA" + "3" * 32, number, caller, "wrong",
                                     "2026-11-01T10:00:00Z"), "test")  # fmt: skip
    admin = AccountAdmin(services.pins.engine, services.hasher)
    Eraser(admin, services.audit, services.lockout, services.hasher).erase(number)
    assert drain_once(context, "worker") == 1
    (row,) = store.export(LONG_AGO)
    assert row.customer_number == account_pseudonym(services.hasher, number)
    assert row.caller == caller_pseudonym(services.hasher, caller)
