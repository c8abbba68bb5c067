"""The worker entry point: queue selection, its own Redis connection, job context, privacy."""

from __future__ import annotations

import dataclasses
import signal
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from ivr.config import QueueSettings, Settings
from ivr.exceptions import ConfigError
from ivr.jobs import (
    DELIVER_WEBHOOK,
    NOTIFY_LOCKOUT,
    PURGE_AUDIT,
    QUEUE_AUDIT,
    QUEUE_CRM,
    QUEUES,
    JobQueues,
    backoff,
    job_id,
)
from ivr.services import Services
from ivr.store.redis_client import close_client
from tests.workers.conftest import Drain, queue
from workers.jobs import current_context
from workers.main import SOCKET_TIMEOUT_S, check_queues, worker_connection

ROUTED = ["CA" + "4" * 32, "call.routed", {"caller": "+4930111111", "customer_number": "200001"}]


def test_check_queues() -> None:
    """No names means every queue; an unknown name is a ConfigError naming the choices."""
    assert check_queues(None) == list(QUEUES)
    assert check_queues(["crm"]) == ["crm"]
    with pytest.raises(ConfigError, match="crm, notify, audit"):
        check_queues(["crm", "mail"])


def test_worker_connection_waits_longer_than_a_blocking_pop(settings: Settings) -> None:
    """The worker's Redis socket outlasts rq's blocking dequeue; no URL is a ConfigError."""
    client = worker_connection(settings)
    try:
        assert client.connection_pool.connection_kwargs["socket_timeout"] == SOCKET_TIMEOUT_S
        assert client.ping()
    finally:
        close_client(client)
    empty = dataclasses.replace(settings, redis=dataclasses.replace(settings.redis, url=""))
    with pytest.raises(ConfigError, match=r"\[redis\] url \(or \[queue\] url\)"):
        worker_connection(empty)


def test_worker_takes_jobs_from_the_queue_url(settings: Settings, redis_url: str) -> None:
    """With [queue] url set, the worker's jobs come from there, not from [redis] url."""
    queued = dataclasses.replace(
        settings, redis=dataclasses.replace(settings.redis, url="redis://127.0.0.1:1/0"),
        queue=QueueSettings(url=redis_url),
    )  # fmt: skip
    client = worker_connection(queued)
    try:
        assert client.ping()
    finally:
        close_client(client)


def test_job_paths_resolve() -> None:
    """Every dotted job path the web app enqueues names a function of the worker."""
    from rq.utils import import_attribute

    for path in (DELIVER_WEBHOOK, NOTIFY_LOCKOUT, PURGE_AUDIT):
        assert callable(import_attribute(path))


def test_only_the_named_queues_are_served(
    drain: Drain, services: Services, redis_client: redis.Redis
) -> None:
    """A worker for the CRM queue leaves audit jobs waiting for an audit worker."""
    JobQueues(services.queue).enqueue(QUEUE_AUDIT, PURGE_AUDIT, [], "audit-purge-a-1", 1)
    assert not drain([QUEUE_CRM])
    assert queue(redis_client, QUEUE_AUDIT).count == 1
    assert drain([QUEUE_AUDIT])
    assert queue(redis_client, QUEUE_AUDIT).count == 0


def test_jobs_hold_json_and_their_description_no_arguments(
    services: Services, redis_client: redis.Redis
) -> None:
    """Job arguments are stored as JSON; the description rq logs carries none of them."""
    JobQueues(services.queue).enqueue(QUEUE_CRM, DELIVER_WEBHOOK, ROUTED, "crm-a-2", 1)
    job = Job.fetch("crm-a-2", connection=redis_client, serializer=JSONSerializer)
    assert job.args == ROUTED
    assert job.description is not None
    for value in ("CA" + "4" * 32, "+4930111111", "200001"):
        assert value not in str(job.description)
    assert redis_client.ttl(job.key) > 0


def test_run_restores_signal_handlers(drain: Drain) -> None:
    """rq's shutdown handlers are removed again when run() returns (in-process callers)."""
    seen: list[Any] = []

    def marker(signum: int, frame: Any) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, marker)
    try:
        drain()
        assert signal.getsignal(signal.SIGTERM) is marker
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_context_exists_only_inside_the_worker() -> None:
    """A job function called outside the IVR worker fails clearly instead of guessing."""
    with pytest.raises(RuntimeError, match="ivr worker"):
        current_context()


def test_backoff_and_job_ids(settings: Settings) -> None:
    """Retries back off exponentially up to a cap; job ids are rq-safe and stable."""
    assert backoff(5) == [10, 40, 160, 640, 2560]
    assert backoff(8)[-1] == 3600
    assert backoff(0) == []
    assert job_id("crm", "CA1", "call.routed") == job_id("crm", "CA1", "call.routed")
    assert job_id("crm", "CA1", "call.routed") != job_id("crm", "CA1", "call.ended")
    assert job_id("crm", "../x y", "e").replace("-", "").isalnum()
