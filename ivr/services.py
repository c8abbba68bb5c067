"""Build the connections and domain objects from settings, once, and pass them on.

There are no module-level clients: :func:`build` is called by the app factory and by
CLI commands, and everything it creates is closed by :meth:`Services.close`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ivr.board import board_observer
from ivr.calls import CallService
from ivr.config import Settings
from ivr.flow.model import Flow, load_flow
from ivr.jobs import AuditObserver, JobEnqueuer, JobQueues
from ivr.metrics import Metrics, MetricsObserver
from ivr.observers import CallObserver, Observers
from ivr.store.audit import AuditStore
from ivr.store.audit_journal import AuditJournal
from ivr.store.calls import CallStore
from ivr.store.hashing import PinHasher
from ivr.store.lockout import Lockout
from ivr.store.pin_step import PinStepLoader
from ivr.store.pins import PinStore
from ivr.store.redis_client import close as close_redis
from ivr.store.redis_client import connect
from ivr.verification import Verifier


@dataclass(frozen=True)
class Services:
    """The app's dependencies; one instance per process."""

    settings: Settings
    flow: Flow
    redis: redis.Redis
    pins: PinStore
    hasher: PinHasher
    lockout: Lockout
    calls: CallService
    audit: AuditStore
    metrics: Metrics = field(default_factory=Metrics)

    def close(self) -> None:
        """Release pooled connections."""
        close_redis(self.redis)
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
    client = connect(settings.redis)
    hasher = PinHasher.from_settings(settings.pin_store)
    pins = PinStore.from_url(settings.pin_store.url, hasher, settings.pin_store.timeout_s)
    audit = AuditStore.on(pins.engine)
    prefix = settings.redis.key_prefix
    lockout = Lockout(client, settings.lockout, prefix)
    store = CallStore(client, settings.redis.call_ttl_s, prefix)
    verifier = Verifier(lockout=lockout, pins=pins, hasher=hasher)
    metrics = Metrics()
    observers = Observers(tuple(make_observers(settings, client, hasher, metrics)))
    # Counting a PIN while loading its state names keys in Lua: a single Redis only.
    pin_steps = PinStepLoader(client, store, lockout) if lockout.single_node else None
    service = CallService(
        flow=flow, calls=store, pins=pins, verifier=verifier, observers=observers,
        pin_steps=pin_steps,
    )  # fmt: skip
    return Services(settings, flow, client, pins, hasher, lockout, service, audit, metrics=metrics)


def make_observers(
    settings: Settings, client: redis.Redis, hasher: PinHasher, metrics: Metrics
) -> list[CallObserver]:
    """Everything that hears about calls: board events, audit, background jobs, metrics."""
    members: list[CallObserver] = []
    if settings.console.agents:  # nobody reads the board while the console is off
        members.append(board_observer(settings, client))
    members.append(AuditObserver(AuditJournal(client, settings.redis.key_prefix)))
    members.append(JobEnqueuer(settings, JobQueues(client), hasher=hasher))
    members.append(MetricsObserver(metrics))
    return members
