"""Background work the web app hands to the worker: CRM webhook, lockout SMS, audit.

:class:`JobEnqueuer` is a call observer. It only enqueues (a round trip to the queue
Redis, ``[queue] url``); the worker in ``workers/`` does the slow part. PIN attempts are
not rq jobs: each goes to the audit journal with the call's save
(:mod:`ivr.store.audit_journal`), which the worker drains into SQL. Job arguments are
JSON-able values — never a PIN — and each job gets an id derived from what it is about
(call and event, attempt, lock), so enqueuing the same thing twice while the first job
exists is refused by rq (``unique=True``) and a retried job can recognise work it
already did.

The web side names the job functions by dotted path instead of importing ``workers``:
the app does not need the worker's HTTP and Twilio code loaded to enqueue.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from ivr.config import Settings
from ivr.exceptions import DependencyError
from ivr.flow.state import CallState, is_unknown
from ivr.observers import PinAttempt
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout

log = logging.getLogger("ivr.jobs")

QUEUE_CRM = "crm"
QUEUE_NOTIFY = "notify"
QUEUE_AUDIT = "audit"
QUEUES = (QUEUE_CRM, QUEUE_NOTIFY, QUEUE_AUDIT)

DELIVER_WEBHOOK = "workers.crm.deliver_webhook"
NOTIFY_LOCKOUT = "workers.sms.notify_lockout"
PURGE_AUDIT = "workers.audit.purge_audit"

EVENT_ROUTED = "call.routed"
EVENT_ENDED = "call.ended"
# Twilio's final CallStatus values; the CRM hears about each call's end once.
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

# Every rq key gets a TTL. A queued job waits at most a week for a worker (a worker down
# longer than that loses its backlog); a failed one is kept a week, for inspection and
# requeue. A finished job is deleted at once (no result, no finished-registry entry): it
# kept ~7 KB per job for a day, ~15 KB per finished call. The jobs' own markers
# (delivered, notified, purged) stop a second run from doing the work twice.
QUEUED_TTL_S = 7 * 86400
RESULT_TTL_S = 0
FAILURE_TTL_S = 7 * 86400
JOB_TIMEOUT_S = 60
# Audit and SMS jobs only fail while the database or Twilio is down; the CRM webhook
# uses [screen_pop] max_retries instead.
JOB_RETRIES = 8
# Retry n waits BACKOFF_BASE_S * BACKOFF_FACTOR**n seconds, capped: 10 s, 40 s, 160 s, …
BACKOFF_BASE_S = 10
BACKOFF_FACTOR = 4
BACKOFF_CAP_S = 3600


def backoff(retries: int) -> list[int]:
    """Seconds to wait before each of ``retries`` retries (exponential, capped)."""
    return [min(BACKOFF_BASE_S * BACKOFF_FACTOR**n, BACKOFF_CAP_S) for n in range(retries)]


def digest_of(*parts: str) -> str:
    """A short stable name for ``parts`` (ids and markers; the parts are not readable)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def job_id(kind: str, *parts: str) -> str:
    """An rq job id for ``kind`` and ``parts`` (rq allows only letters, digits, - and _)."""
    return f"{kind}-{digest_of(*parts)}"


def utc_iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with a ``Z``, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def routed_payload(state: CallState, at: datetime) -> dict[str, Any]:
    """The CRM body when a call reaches an agent: the screen-pop plus the event name."""
    return {"event": EVENT_ROUTED, "at": utc_iso(at), **state.screen_pop().to_json()}


def ended_payload(call_sid: str, call_status: str, at: datetime) -> dict[str, Any]:
    """The CRM body when Twilio reports a call's final status."""
    return {
        "event": EVENT_ENDED,
        "at": utc_iso(at),
        "call_sid": call_sid,
        "call_status": call_status,
    }


@dataclass(frozen=True)
class JobQueues:
    """Enqueues jobs on the named rq queues with TTLs, retries and unique ids."""

    client: redis.Redis

    def queue(self, name: str) -> Queue:
        """The rq queue ``name`` with the JSON serializer the worker expects."""
        return Queue(name, connection=self.client, serializer=JSONSerializer)

    def enqueue(
        self,
        queue: str,
        func: str,
        args: Sequence[Any],
        jid: str,
        retries: int,
    ) -> bool:
        """Enqueue ``func(*args)`` as job ``jid``; False when that job already exists."""
        retry = Retry(max=retries, interval=backoff(retries)) if retries else None
        target = self.queue(queue)
        with self.client.pipeline(transaction=False) as pipe:
            try:
                target.enqueue_call(
                    func, args=list(args), job_id=jid, unique=True, retry=retry,
                    description=f"{func} {jid}",  # rq logs the description: no arguments
                    timeout=JOB_TIMEOUT_S, ttl=QUEUED_TTL_S, result_ttl=RESULT_TTL_S,
                    failure_ttl=FAILURE_TTL_S,
                )  # fmt: skip
            except DuplicateJobError:
                log.info("job %s already enqueued", jid)
                return False
            # rq leaves its queue list and queue index without a TTL; every key written
            # here gets one. Each enqueue pushes it out again, and an expired list only
            # held jobs whose own keys had expired (QUEUED_TTL_S) as well.
            pipe.expire(target.key, QUEUED_TTL_S)
            pipe.expire(Queue.redis_queues_keys, QUEUED_TTL_S)
            pipe.execute()
        return True


def _clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobEnqueuer:
    """Call observer that turns call events into background jobs."""

    settings: Settings
    queues: JobQueues
    # The app's hasher (built once): lock markers are keyed like the lockout keys.
    hasher: PinHasher
    keys: KeyLayout
    clock: Callable[[], datetime] = field(default=_clock)

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        """Enqueue the CRM webhook once, when the call is handed to an agent."""
        if not self.settings.screen_pop.webhook_url:
            return
        if state.routed and (previous is None or not previous.routed):
            self._crm(state.call_sid, EVENT_ROUTED, routed_payload(state, self.clock()))

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        """Enqueue the CRM's final event when Twilio reports the call is over."""
        if self.settings.screen_pop.webhook_url and status in TERMINAL_STATUSES:
            self._crm(call_sid, EVENT_ENDED, ended_payload(call_sid, status, self.clock()))

    def pin_attempted(self, attempt: PinAttempt) -> None:
        """On the attempt that locked an account, notify its holder."""
        # An unknown customer number has no holder to tell.
        known = not is_unknown(attempt.customer_number)
        if attempt.locked_now and self.settings.notify.sms_from and known:
            self._notify_lock(attempt.customer_number)

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        """Nothing to enqueue: the routed call's CRM event follows its save."""

    def _crm(self, call_sid: str, event: str, payload: Mapping[str, Any]) -> None:
        self.queues.enqueue(
            QUEUE_CRM, DELIVER_WEBHOOK, [call_sid, event, dict(payload)],
            job_id("crm", call_sid, event), self.settings.screen_pop.max_retries,
        )  # fmt: skip

    def _notify_lock(self, customer_number: str) -> None:
        # locked_now is reported once per lock by the lockout script; this marker (alive
        # as long as the lock) also absorbs any second report for the same lock.
        lock_id = uuid.uuid4().hex
        # Keyed like the lockout keys: a plain hash of a short customer number is reversible.
        marker = self.keys.lock_notified(self.hasher.subject("account", customer_number))
        ttl = self.settings.lockout.account_lock_s
        if not self.queues.client.set(marker, lock_id, nx=True, ex=ttl):
            log.info("lockout SMS for this lock already enqueued")
            return
        self.queues.enqueue(
            QUEUE_NOTIFY, NOTIFY_LOCKOUT, [customer_number, lock_id], f"sms-{lock_id}",
            JOB_RETRIES,
        )  # fmt: skip
