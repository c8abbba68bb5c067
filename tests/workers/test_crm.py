"""CRM webhook: signed screen-pop POSTs, retried with backoff, delivered once per event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from ivr.config import Settings
from ivr.jobs import (
    DELIVER_WEBHOOK,
    EVENT_ENDED,
    EVENT_ROUTED,
    QUEUE_CRM,
    JobEnqueuer,
    JobQueues,
    job_id,
)
from ivr.services import Services
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.twilio_phone import Call
from tests.workers.conftest import WEBHOOK_SECRET, Drain, queue, release_retries
from tests.workers.servers import LocalServer, Recorded, Reply
from workers import crm as crm_hook

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]


def identified_call(phone: Phone) -> Call:
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", PIN_ANNA)
    return call


def body(request: Recorded) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(request.body)
    return parsed


def crm_job(client: redis.Redis, call_sid: str, event: str = EVENT_ROUTED) -> Job:
    return Job.fetch(job_id("crm", call_sid, event), connection=client, serializer=JSONSerializer)


def test_routed_call_posts_signed_screen_pop(phone: Phone, drain: Drain, crm: LocalServer) -> None:
    """A routed call reaches the CRM once: the screen-pop JSON, HMAC-signed, with its key."""
    call = identified_call(phone)
    assert crm.requests == []  # the webhook only enqueues; the worker delivers
    assert drain()
    (request,) = crm.requests
    assert request.path == "/hook"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert crm_hook.verify(WEBHOOK_SECRET, headers["x-ivr-signature"], request.body, time.time())
    assert headers["x-ivr-idempotency-key"] == f"{call.call_sid}:{EVENT_ROUTED}"
    assert headers["x-ivr-event"] == EVENT_ROUTED
    sent = body(request)
    assert sent["event"] == EVENT_ROUTED and sent["call_sid"] == call.call_sid
    assert sent["identified"] is True and sent["name"] == "Anna Alpha"
    assert sent["customer_number"] == "200001" and sent["reason"] == "verified"
    assert PIN_ANNA.encode() not in request.body


def test_hang_up_sends_the_final_event(phone: Phone, drain: Drain, crm: LocalServer) -> None:
    """Twilio's final status becomes one call.ended event after call.routed."""
    call = identified_call(phone)
    call.hang_up()
    call.hang_up()  # Twilio may repeat a callback: still one event
    drain()
    events = [str(body(r)["event"]) for r in crm.requests]
    assert sorted(events) == [EVENT_ENDED, EVENT_ROUTED]
    ended = next(body(r) for r in crm.requests if body(r)["event"] == EVENT_ENDED)
    assert ended["call_status"] == "completed" and ended["call_sid"] == call.call_sid


def test_error_500_is_retried_with_backoff_and_delivered_once(
    phone: Phone, drain: Drain, crm: LocalServer, redis_client: redis.Redis
) -> None:
    """A 500 schedules a retry after a backoff; the retry delivers the same signed body."""
    crm.script(Reply(500), Reply(200))
    call = identified_call(phone)
    drain()
    assert len(crm.requests) == 1
    scheduled = queue(redis_client, QUEUE_CRM).scheduled_job_registry
    job = crm_job(redis_client, call.call_sid)
    assert scheduled.get_job_ids() == [job.id]
    assert scheduled.get_scheduled_time(job.id) > datetime.now(UTC)  # waits out its backoff
    assert release_retries(redis_client) == 1
    drain()
    first, second = crm.requests
    assert first.body == second.body
    assert first.headers["X-IVR-Idempotency-Key"] == second.headers["X-IVR-Idempotency-Key"]
    # Done: the job is gone (no result kept); its delivered marker stops a second POST.
    assert not Job.exists(job.id, connection=redis_client)
    drain()
    assert len(crm.requests) == 2


def test_timeout_is_retried_and_the_error_leaks_nothing(
    phone: Phone,
    drain: Drain,
    crm: LocalServer,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CRM slower than timeout_s fails each attempt; errors and logs name no URL or data."""
    crm.script(Reply(200, delay_s=1.0))
    call = identified_call(phone)
    drain()
    while release_retries(redis_client):
        drain()
    job = crm_job(redis_client, call.call_sid)
    assert job.get_status() == "failed"
    result = job.latest_result()
    assert result is not None and result.exc_string is not None
    assert "CrmDeliveryError: CRM webhook failed: ReadTimeout" in result.exc_string
    assert "ReadTimeout" in caplog.text
    for secret in (crm.url, "/hook", "Anna", "200001", WEBHOOK_SECRET, PIN_ANNA):
        assert secret not in result.exc_string
        assert secret not in caplog.text


def test_gives_up_after_max_retries_and_keeps_the_event(
    phone: Phone, drain: Drain, crm: LocalServer, redis_client: redis.Redis, settings: Settings
) -> None:
    """After max_retries the job stays in the failed registry with its payload, for requeue."""
    crm.script(Reply(503))
    call = identified_call(phone)
    drain()
    while release_retries(redis_client):
        drain()
    assert len(crm.requests) == 1 + settings.screen_pop.max_retries
    failed = FailedJobRegistry(queue=queue(redis_client, QUEUE_CRM))
    job = crm_job(redis_client, call.call_sid)
    assert failed.get_job_ids() == [job.id]
    assert job.args[2]["call_sid"] == call.call_sid
    assert redis_client.ttl(job.key) > 0
    crm.script(Reply(200))
    failed.requeue(job.id)
    drain()
    assert len(crm.requests) == 2 + settings.screen_pop.max_retries


def test_enqueueing_the_same_event_twice_is_refused(
    settings: Settings, redis_client: redis.Redis, services: Services, crm: LocalServer
) -> None:
    """A second enqueue for the same call and event finds the first job and adds none."""
    enqueuer = JobEnqueuer(settings, JobQueues(services.queue), services.hasher, services.keys)
    enqueuer.call_status("CA" + "1" * 32, "completed", None)
    enqueuer.call_status("CA" + "1" * 32, "completed", None)
    enqueuer.call_status("CA" + "1" * 32, "in-progress", None)  # not final: no event
    assert queue(redis_client, QUEUE_CRM).count == 1


def test_rerun_after_delivery_does_not_post_again(
    phone: Phone, drain: Drain, crm: LocalServer, redis_client: redis.Redis
) -> None:
    """Once delivered, the same call and event is never POSTed again (marker in Redis)."""
    call = identified_call(phone)
    drain()
    again = [call.call_sid, EVENT_ROUTED, {"call_sid": call.call_sid}]
    jid = job_id("crm", call.call_sid, EVENT_ROUTED)
    # The delivered job is gone, so the same job can be enqueued again (a late retry).
    assert JobQueues(redis_client).enqueue(QUEUE_CRM, DELIVER_WEBHOOK, again, jid, 1)
    drain()
    assert len(crm.requests) == 1


@pytest.mark.parametrize("overrides", [{}])
def test_no_webhook_url_means_no_job(phone: Phone, redis_client: redis.Redis) -> None:
    """Without [screen_pop] webhook_url nothing is enqueued for the CRM."""
    identified_call(phone).hang_up()
    assert queue(redis_client, QUEUE_CRM).count == 0


def test_signature_format_and_verification() -> None:
    """The signature covers timestamp and body; stale, altered or foreign ones fail."""
    payload = crm_hook.body_bytes({"b": 1, "a": "ä"})
    assert payload == b'{"a":"\\u00e4","b":1}'  # compact, sorted, ASCII-only
    now = int(time.time())
    header = crm_hook.sign("s3cret-s3cret-s3cret", now, payload)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert crm_hook.verify("s3cret-s3cret-s3cret", header, payload, now=now)
    assert not crm_hook.verify("s3cret-s3cret-s3cret", header, payload + b" ", now=now)
    assert not crm_hook.verify("another-secret-000000", header, payload, now=now)
    assert not crm_hook.verify("s3cret-s3cret-s3cret", header, payload, now=now + 301)
    assert not crm_hook.verify("s3cret-s3cret-s3cret", "v1=abc", payload, now=now)
