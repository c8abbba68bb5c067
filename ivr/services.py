"""Build the connections and domain objects from settings, once, and pass them on.

There are no module-level clients: :func:`build` is called by the app factory and by
CLI commands, and everything it creates is closed by :meth:`Services.close`. Two Redis
connections: the state Redis (``[redis] url``: call state, lockout counters, board,
audit journal; standalone, Sentinel or Cluster) and the queue Redis (``[queue] url``,
by default the same server: rq's jobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ivr.board import board_observer
from ivr.calls import CallService
from ivr.config import Settings
from ivr.exceptions import ConfigError
from ivr.flow.model import Flow, load_flow
from ivr.jobs import JobEnqueuer, JobQueues
from ivr.metrics import Metrics, MetricsObserver
from ivr.observers import CallObserver, Observers
from ivr.resave import Resaver
from ivr.startup import Deferred
from ivr.store.audit import AuditStore
from ivr.store.audit_journal import AuditJournal
from ivr.store.calls import CallStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import Lockout
from ivr.store.pins import PinStore
from ivr.store.redis_client import close_client, open_client, open_link
from ivr.store.redis_health import check_eviction_policy
from ivr.verification import PinGate
from ivr.webhook_runner import WebhookRunner


@dataclass(frozen=True)
class Services:
    """The app's dependencies; one instance per process."""

    settings: Settings
    flow: Flow
    link: Link
    queue: redis.Redis
    keys: KeyLayout
    pins: PinStore
    hasher: PinHasher
    lockout: Lockout
    journal: AuditJournal
    calls: CallService
    audit: AuditStore
    runner: WebhookRunner
    startup: Deferred
    metrics: Metrics = field(default_factory=Metrics)

    def close(self) -> None:
        """Release pooled connections."""
        self.startup.close()
        self.runner.close()
        self.calls.resaver.close()
        _close(self.queue, self.link, self.pins)


def load_default_flow(settings: Settings) -> Flow:
    """The configured flow, validated (FlowError names what is wrong)."""
    return load_flow(
        settings.flow_path(),
        pin_length=settings.pin.length,
        attempts_per_call=settings.lockout.attempts_per_call,
    )


def build(settings: Settings, *, tolerate_outage: bool = False) -> Services:
    """Create every connection and service object for ``settings``.

    Bad configuration raises ConfigError. A database that does not answer raises
    DependencyError, unless ``tolerate_outage`` (the web app): then what start-up needs
    of it is left to ``Services.startup`` (see :mod:`ivr.startup`). Redis is asked
    nothing that could fail start-up but its eviction policy, checked if it answers.
    """
    flow = load_default_flow(settings)
    hasher = PinHasher.from_settings(settings.pin_store)
    pins, audit, startup = _sql_stores(settings, hasher, tolerate_outage)
    link = open_link(settings.redis)
    queue = _queue_client(settings, link)
    try:
        check_eviction_policy(link, settings.redis)
    except ConfigError:
        _close(queue, link, pins)
        raise
    keys = KeyLayout(settings.redis.key_prefix)
    lockout = Lockout(link, keys, settings.lockout)
    journal = AuditJournal(link, keys)
    metrics = Metrics()
    observers = Observers(tuple(make_observers(settings, link, queue, keys, hasher, metrics)))
    service = CallService(
        flow=flow, calls=CallStore(link, keys, settings.redis.call_ttl_s), pins=pins,
        gate=PinGate(lockout, pins, hasher), journal=journal, audit=audit, observers=observers,
        save_reserve_s=save_reserve(settings), observers_reserve_s=observers_reserve(settings),
        resaver=Resaver(give_up_s=settings.redis.call_ttl_s,
                        on_dropped=metrics.resaves_dropped.inc),
    )  # fmt: skip
    runner = WebhookRunner(settings.server.webhook_deadline_s, pins.canceller,
                           on_late=metrics.late_webhooks.inc,
                           on_shed=metrics.shed_webhooks.inc)  # fmt: skip
    return Services(
        settings, flow, link, queue, keys, pins, hasher, lockout, journal, service, audit,
        runner, startup, metrics=metrics,
    )  # fmt: skip


def _sql_stores(
    settings: Settings, hasher: PinHasher, tolerate_outage: bool
) -> tuple[PinStore, AuditStore, Deferred]:
    """The PIN store and audit trail, their tables created now or (``tolerate_outage``)
    as soon as the database answers."""
    pins = PinStore.connect(
        settings.pin_store.url, hasher, settings.pin_store.timeout_s,
        # A webhook's read never waits past its deadline (e.g. for a SQLite lock).
        read_timeout_s=min(settings.pin_store.timeout_s, settings.server.webhook_deadline_s),
    )  # fmt: skip
    audit = AuditStore(pins.engine)
    startup = Deferred({"PIN store tables": pins.create_tables,
                        "audit tables": audit.create_tables})  # fmt: skip
    failed = startup.attempt()
    if failed is not None and not tolerate_outage:
        pins.close()
        raise failed
    return pins, audit, startup


def _close(queue: redis.Redis, link: Link, pins: PinStore) -> None:
    if queue is not link.client:
        close_client(queue)
    link.close()
    pins.close()


def save_reserve(settings: Settings) -> float:
    """What a webhook needs left of its deadline to save its result: the save and the
    observers' writes, three Redis rounds (:func:`_round_reserve`); its loads and lockout
    counts wait on Redis until only this is left."""
    return 3 * _round_reserve(settings)


def observers_reserve(settings: Settings) -> float:
    """What the observers' writes after the save need (two of those rounds: the board's
    event, a job's enqueue): the save waits on Redis until only this is left."""
    return 2 * _round_reserve(settings)


def _round_reserve(settings: Settings) -> float:
    """One round kept for after the work: the socket timeout that bounds the observers'
    writes (they have no deadline of their own), at most a sixth of the deadline so the
    reserve never takes more than half of it."""
    return min(settings.redis.socket_timeout_s, settings.server.webhook_deadline_s / 6)


def _queue_client(settings: Settings, link: Link) -> redis.Redis:
    """rq's Redis: the state Redis's own client when ``[queue] url`` is not set."""
    if not settings.queue.url:
        client: redis.Redis = link.client  # validated: never a cluster here
        return client
    return open_client(settings.queue.url, settings.redis, key="[queue] url")


def make_observers(
    settings: Settings,
    link: Link,
    queue: redis.Redis,
    keys: KeyLayout,
    hasher: PinHasher,
    metrics: Metrics,
) -> list[CallObserver]:
    """Everything that hears about calls: board events, background jobs, metrics."""
    members: list[CallObserver] = []
    if settings.console.agents:  # nobody reads the board while the console is off
        members.append(board_observer(settings, link, keys))
    members.append(JobEnqueuer(settings, JobQueues(queue), hasher=hasher, keys=keys))
    members.append(MetricsObserver(metrics))
    return members
