"""Audit jobs: purge the SQL audit trail daily (attempts arrive via workers.journal).

Scheduling: rq has no cron of its own in the worker loop (rq's CronScheduler is another
process to run and supervise). Instead every worker that serves the audit queue calls
:func:`schedule_daily_purge` from its maintenance tick (at start-up and every few
minutes). A Redis ``SET NX`` marker per UTC day makes exactly one of them enqueue the
purge, however many workers run; the purge itself is idempotent, so a second run would
only find nothing to delete.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis

from ivr.config import Settings
from ivr.jobs import PURGE_AUDIT, QUEUE_AUDIT, JobQueues
from ivr.store.keys import PURGE_MARKER_TTL_S, KeyLayout
from workers.jobs import JobContext, current_context

log = logging.getLogger("workers.audit")

PURGE_RETRIES = 3


def purge_audit() -> int:
    """RQ job: delete audit rows older than ``[audit] retention_days``."""
    return purge_expired(current_context())


def purge_expired(ctx: JobContext) -> int:
    """Delete the rows past retention; returns how many."""
    cutoff = ctx.clock() - timedelta(days=ctx.settings.audit.retention_days)
    removed = ctx.audit.purge(cutoff)
    log.info("audit purge removed %d rows older than %s", removed, cutoff.date().isoformat())
    return removed


def purge_marker(settings: Settings, day: str) -> str:
    """The Redis key saying the purge of ``day`` (YYYY-MM-DD) was enqueued."""
    return KeyLayout(settings.redis.key_prefix).audit_purge(day)


def schedule_daily_purge(settings: Settings, client: redis.Redis, now: datetime) -> bool:
    """Enqueue today's purge unless some worker already did; True when this call did."""
    day = now.date().isoformat()
    if not client.set(purge_marker(settings, day), "1", nx=True, ex=PURGE_MARKER_TTL_S):
        return False
    jid = f"audit-purge-{day}"
    queued = JobQueues(client).enqueue(QUEUE_AUDIT, PURGE_AUDIT, [], jid, PURGE_RETRIES)
    if queued:
        log.info("audit purge for %s enqueued", day)
    return queued
