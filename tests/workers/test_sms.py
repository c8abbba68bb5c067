"""Lockout SMS through the Twilio REST client (pointed at a local server), once per lock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import redis

from ivr.config import Settings
from ivr.jobs import QUEUE_NOTIFY
from ivr.services import Services
from ivr.store.accounts_csv import ImportRow
from ivr.store.keys import KeyLayout
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.redis_server import free_port
from tests.twilio_phone import Call, parse_task
from tests.workers.conftest import ACCOUNT_SID, SMS_FROM, Drain, queue
from tests.workers.servers import LocalServer, Reply, message_json, twilio_factory
from workers import sms
from workers.jobs import JobContext, build_context
from workers.main import journal_link

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
MOBILE = "+4915112345678"


def lock_anna(phone: Phone) -> None:
    """Two wrong PINs (account_max_failures = 2) lock account 200001."""
    phone(caller=SINGLE_OWNER).walk("1", "000001", "000002")


@pytest.fixture
def context(
    settings: Settings, services: Services, twilio_api: LocalServer
) -> Iterator[JobContext]:
    """A job context like the worker's, its Twilio client aimed at the local API."""
    client = redis.Redis.from_url(settings.redis.url)
    ctx = build_context(
        settings, client, journal_link(settings), twilio_factory=twilio_factory(twilio_api.url)
    )
    yield ctx
    ctx.close()


def test_lockout_sends_one_sms_without_digits(
    phone: Phone, drain: Drain, twilio_api: LocalServer
) -> None:
    """The attempt that locks the account sends one SMS to its number; the text has no digits."""
    lock_anna(phone)
    drain()
    (request,) = twilio_api.requests
    assert request.path == MESSAGES_PATH
    form = request.form()
    assert form["To"] == SINGLE_OWNER and form["From"] == SMS_FROM
    assert "gesperrt" in form["Body"] and not re.search(r"\d", form["Body"])
    assert request.headers["Authorization"].startswith("Basic ")


def test_calls_while_locked_send_nothing_more(
    phone: Phone, drain: Drain, twilio_api: LocalServer
) -> None:
    """Further attempts during the same lock (even the right PIN) send no second SMS."""
    lock_anna(phone)
    drain()
    assert parse_task(phone(caller=SINGLE_OWNER).walk("1", PIN_ANNA))["reason"] == "locked"
    drain()
    assert len(twilio_api.requests) == 1


@pytest.mark.parametrize(
    "overrides", [{"lockout": {"account_max_failures": 2}, "twilio": {"account_sid": ACCOUNT_SID}}]
)
def test_no_sender_configured_means_no_job(phone: Phone, redis_client: redis.Redis) -> None:
    """Without [notify] sms_from nothing is enqueued for the lockout."""
    lock_anna(phone)
    assert queue(redis_client, QUEUE_NOTIFY).count == 0


def test_same_lock_is_sent_once(context: JobContext, twilio_api: LocalServer) -> None:
    """A second run for the same lock (a retry, a duplicate) finds the claim and sends nothing."""
    assert sms.send_once(context, "200001", "lock-a") == "sent"
    assert sms.send_once(context, "200001", "lock-a") == "duplicate"
    assert sms.send_once(context, "200001", "lock-b") == "sent"
    assert len(twilio_api.requests) == 2


def test_twilio_error_500_raises_for_retry_then_sends(
    context: JobContext, twilio_api: LocalServer
) -> None:
    """A 5xx from Twilio raises (RQ retries), releases the claim, and the retry sends."""
    twilio_api.script(Reply(500, b'{"code": 20500, "message": "oops", "status": 500}'))
    with pytest.raises(sms.SmsDeliveryError) as caught:
        sms.send_once(context, "200001", "lock-c")
    assert SINGLE_OWNER not in str(caught.value)
    twilio_api.script(Reply(201, message_json()))
    assert sms.send_once(context, "200001", "lock-c") == "sent"


def test_permanent_refusal_is_not_retried(context: JobContext, twilio_api: LocalServer) -> None:
    """A 400 (e.g. not a valid mobile number) is logged and given up, not retried."""
    twilio_api.script(Reply(400, b'{"code": 21211, "message": "invalid To", "status": 400}'))
    assert sms.send_once(context, "200001", "lock-d") == "refused"
    assert len(twilio_api.requests) == 1


def test_twilio_unreachable_raises_for_retry(settings: Settings, services: Services) -> None:
    """When Twilio cannot be reached at all, the job raises and a retry may still send."""
    client = redis.Redis.from_url(settings.redis.url)
    dead = twilio_factory(f"http://127.0.0.1:{free_port()}")
    ctx = build_context(settings, client, journal_link(settings), twilio_factory=dead)
    try:
        with pytest.raises(sms.SmsDeliveryError):
            sms.send_once(ctx, "200001", "lock-e")
        assert not client.exists(KeyLayout().sms_claim("lock-e"))
    finally:
        ctx.close()


def test_lost_answer_is_not_sent_again(
    settings: Settings, services: Services, twilio_api: LocalServer
) -> None:
    """When Twilio got the request but its answer never came, no second SMS is risked."""
    twilio_api.script(Reply(201, message_json(), delay_s=1.0))
    client = redis.Redis.from_url(settings.redis.url)
    ctx = build_context(
        settings, client, journal_link(settings),
        twilio_factory=twilio_factory(twilio_api.url, 0.3),
    )  # fmt: skip
    try:
        assert sms.send_once(ctx, "200001", "lock-j") == "unknown"
        assert sms.send_once(ctx, "200001", "lock-j") == "duplicate"
    finally:
        ctx.close()
    assert len(twilio_api.requests) == 1


def test_prefers_a_mobile_number(
    context: JobContext, services: Services, twilio_api: LocalServer
) -> None:
    """An account with a landline and a mobile gets the SMS on the mobile."""
    services.pins.upsert_many([ImportRow(2, "300001", "Mo Bil", ("+4930444444", MOBILE), "1")])
    assert sms.send_once(context, "300001", "lock-f") == "sent"
    assert twilio_api.requests[0].form()["To"] == MOBILE


def test_account_without_phone_is_skipped(
    context: JobContext, services: Services, twilio_api: LocalServer
) -> None:
    """No phone number on the account: nothing is sent and nothing is retried."""
    services.pins.upsert_many([ImportRow(2, "300002", "No Phone", (), "1")])
    assert sms.send_once(context, "300002", "lock-g") == "no_phone"
    assert sms.send_once(context, "999999", "lock-h") == "no_phone"
    assert twilio_api.requests == []


@pytest.mark.parametrize(
    "overrides",
    [{"twilio": {"account_sid": ACCOUNT_SID}, "notify": {"sms_from": "MG" + "2" * 32}}],
)
def test_messaging_service_sender(context: JobContext, twilio_api: LocalServer) -> None:
    """A Messaging Service SID as sender is passed as MessagingServiceSid, not From."""
    assert sms.send_once(context, "200001", "lock-i") == "sent"
    form = twilio_api.requests[0].form()
    assert form["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in form


def test_pick_recipient() -> None:
    """Mobile first, else the first number, else nobody."""
    assert sms.pick_recipient(["+4930111111", MOBILE]) == MOBILE
    assert sms.pick_recipient(["+4930111111", "+4930222222"]) == "+4930111111"
    assert sms.pick_recipient([]) is None
