"""Jobs that have waited: an rq job enqueued now, then dated back in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from rq.job import Job
from rq.utils import utcformat

from ivr.jobs import PURGE_AUDIT, JobQueues


def old_job(client: redis.Redis, queue: str, jid: str, age_s: float) -> None:
    """Enqueue an audit purge as ``jid`` on ``queue``, as if ``age_s`` seconds ago."""
    JobQueues(client).enqueue(queue, PURGE_AUDIT, [], jid, 0)
    enqueued = datetime.now(UTC) - timedelta(seconds=age_s)
    client.hset(Job.key_for(jid), "enqueued_at", utcformat(enqueued))
