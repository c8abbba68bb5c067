"""How long the oldest piece of background work has been waiting, per queue.

A worker that is down, or stuck behind a dead Redis, shows here first: jobs and audit
entries pile up silently otherwise. ``/metrics`` exports the ages
(``ivr_backlog_oldest_seconds``) and ``/readyz`` names the queues past
``[queue] backlog_alert_s`` (for the operator: a web node stays ready, it can still
route every caller).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from ivr.jobs import QUEUES
from ivr.store.audit_journal import AuditJournal

JOURNAL = "audit-journal"


def oldest_waiting_s(
    queue_client: redis.Redis, journal: AuditJournal, clock: Callable[[], float] = time.time
) -> dict[str, float]:
    """Seconds the oldest waiting job of each rq queue, and the oldest journal entry,
    have waited (0 when nothing waits)."""
    now = clock()
    ages: dict[str, float] = {}
    for name in QUEUES:
        queue = Queue(name, connection=queue_client, serializer=JSONSerializer)
        first = queue.get_job_ids(0, 1)
        enqueued = _enqueued_at(queue_client, first[0], now) if first else now
        ages[name] = max(now - enqueued, 0.0)
    entry = journal.oldest_id()
    ages[JOURNAL] = max(now - int(entry.split("-")[0]) / 1000, 0.0) if entry else 0.0
    return ages


def _enqueued_at(client: redis.Redis, job_id: str, now: float) -> float:
    """When a queued job was enqueued (``now`` if it is gone already)."""
    try:
        job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
    except NoSuchJobError:
        return now
    return job.enqueued_at.timestamp() if job.enqueued_at else now
