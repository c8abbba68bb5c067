"""How long background work has waited, per queue and for the audit journal."""

from __future__ import annotations

import redis

from ivr.backlog import JOURNAL, oldest_waiting_s
from ivr.jobs import QUEUE_AUDIT, QUEUE_CRM, QUEUE_NOTIFY
from ivr.store.audit_journal import AuditJournal
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from tests.backlog import old_job

NOW = 1_800_000_000.0


def test_nothing_waiting_is_zero_everywhere(redis_client: redis.Redis, link: Link) -> None:
    """Empty queues and an empty journal are all 0 s old."""
    ages = oldest_waiting_s(redis_client, AuditJournal(link, KeyLayout()))
    assert ages == {QUEUE_CRM: 0.0, QUEUE_NOTIFY: 0.0, QUEUE_AUDIT: 0.0, JOURNAL: 0.0}


def test_ages_of_the_first_entry_and_the_first_job(redis_client: redis.Redis, link: Link) -> None:
    """The journal's age is its first entry's, a queue's is its first job's enqueue time."""
    journal = AuditJournal(link, KeyLayout())
    redis_client.xadd(journal.key, {"c": "x"}, id=f"{int((NOW - 200) * 1000)}-0")
    redis_client.xadd(journal.key, {"c": "y"}, id=f"{int((NOW - 10) * 1000)}-0")
    old_job(redis_client, QUEUE_NOTIFY, "notify-old", age_s=0)
    old_job(redis_client, QUEUE_NOTIFY, "notify-new", age_s=0)
    # NOW is 2027-01-15 08:00:00 UTC: the first job waited 60 s.
    redis_client.hset("rq:job:notify-old", "enqueued_at", "2027-01-15T07:59:00.000000Z")
    ages = oldest_waiting_s(redis_client, journal, clock=lambda: NOW)
    assert ages[JOURNAL] == 200.0
    assert ages[QUEUE_NOTIFY] == 60.0
    assert ages[QUEUE_CRM] == 0.0


def test_a_job_gone_from_under_the_queue_counts_as_new(
    redis_client: redis.Redis, link: Link
) -> None:
    """A queued id whose job hash expired (rq skips it) does not make the queue look old."""
    old_job(redis_client, QUEUE_CRM, "crm-gone", age_s=500)
    redis_client.delete("rq:job:crm-gone")
    ages = oldest_waiting_s(redis_client, AuditJournal(link, KeyLayout()))
    assert ages[QUEUE_CRM] == 0.0
