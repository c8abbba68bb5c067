"""Worker test fixtures: the app configured with a local CRM and a local Twilio API,
and ``drain`` to run a real rq worker (burst mode) against the run's Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from ivr.config import Settings
from ivr.jobs import QUEUES
from ivr.store.audit_journal import AuditJournal
from ivr.store.link import Link
from tests.workers.servers import LocalServer, Reply, local_server, message_json, twilio_factory
from workers.main import run

WEBHOOK_SECRET = "crm-webhook-secret-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
SMS_FROM = "+4930555000"
Drain = Callable[..., bool]


@pytest.fixture
def crm() -> Iterator[LocalServer]:
    """A CRM endpoint that answers 200 unless scripted otherwise."""
    with local_server() as server:
        yield server


@pytest.fixture
def twilio_api() -> Iterator[LocalServer]:
    """A stand-in for api.twilio.com that accepts messages (201)."""
    with local_server() as server:
        server.script(Reply(201, message_json()))
        yield server


@pytest.fixture
def overrides(crm: LocalServer) -> dict[str, dict[str, Any]]:
    """Webhook to the local CRM (short timeout, two retries), lockout SMS switched on."""
    return {
        "screen_pop": {
            "webhook_url": f"{crm.url}/hook",
            "webhook_secret": WEBHOOK_SECRET,
            "timeout_s": 0.5,
            "max_retries": 2,
        },
        "twilio": {"account_sid": ACCOUNT_SID},
        "notify": {"sms_from": SMS_FROM},
        "lockout": {"account_max_failures": 2},
    }


@pytest.fixture
def drain(settings: Settings, twilio_api: LocalServer) -> Drain:
    """Run a burst worker until the queues are empty; returns whether it ran a job."""

    def work(queues: list[str] | None = None) -> bool:
        return run(settings, queues, burst=True, twilio_factory=twilio_factory(twilio_api.url))

    return work


def queue(client: redis.Redis, name: str) -> Queue:
    """The rq queue ``name`` as the app and worker see it."""
    return Queue(name, connection=client, serializer=JSONSerializer)


def release_retries(client: redis.Redis) -> int:
    """Make every job waiting out its retry backoff due now; returns how many."""
    released = 0
    for name in QUEUES:
        registry = queue(client, name).scheduled_job_registry
        for jid in registry.get_job_ids():
            registry.requeue(jid)
            released += 1
    return released


def add_attempt(journal: AuditJournal, link: Link, call_sid: str, outcome: str = "wrong") -> None:
    """Journal one attempt (wrong by default) the way a PIN webhook does (in a round)."""
    link.send(journal.entry(call_sid, "200001", None, outcome, "2026-11-01T10:00:00Z"), "test")
