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
from ivr.flow.model import Flow, load_flow
from ivr.jobs import JobEnqueuer, JobQueues
from ivr.metrics import Metrics, MetricsObserver
from ivr.observers import CallObserver, Observers
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
    metrics: Metrics = field(default_factory=Metrics)

    def close(self) -> None:
        """Release pooled connections."""
        if self.queue is not self.link.client:
            close_client(self.queue)
        self.link.close()
        self.pins.close()


def load_default_flow(settings: Settings) -> Flow:
    """The configured flow, validated (FlowError names what is wrong)."""
    return load_flow(
        settings.flow_path(),
        pin_length=settings.pin.length,
        attempts_per_call=settings.lockout.attempts_per_call,
    )


def build(settings: Settings) -> Services:
    """Create every connection and service object for ``settings``."""
    flow = load_default_flow(settings)
    link = open_link(settings.redis)
    queue = _queue_client(settings, link)
    check_eviction_policy(link, settings.redis)
    keys = KeyLayout(settings.redis.key_prefix)
    hasher = PinHasher.from_settings(settings.pin_store)
    pins = PinStore.from_url(settings.pin_store.url, hasher, settings.pin_store.timeout_s)
    audit = AuditStore.on(pins.engine)
    lockout = Lockout(link, keys, settings.lockout)
    journal = AuditJournal(link, keys)
    metrics = Metrics()
    observers = Observers(tuple(make_observers(settings, link, queue, keys, hasher, metrics)))
    service = CallService(
        flow=flow, calls=CallStore(link, keys, settings.redis.call_ttl_s), pins=pins,
        gate=PinGate(lockout, pins, hasher), journal=journal, audit=audit, observers=observers,
    )  # fmt: skip
    return Services(
        settings, flow, link, queue, keys, pins, hasher, lockout, journal, service, audit,
        metrics=metrics,
    )  # fmt: skip


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
