"""Replays and retries change nothing (issue 11, item 3).

A request for a step the call has left, or for a call already routed, gets safe TwiML
(routed not identified, reason unavailable) and changes nothing: not the stored call,
not the screen-pop, not the board. A retry of the request the call answered last (the
same step, as Twilio retries it) gets the very same answer, without its work (and its
PIN count) done twice — also when it arrives while the first is still at work.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.services import Services
from tests.conftest import ACCOUNTS, API_TOKEN, AUTH_TOKEN, SINGLE_OWNER
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.live_server import serving
from tests.racing import race
from tests.twilio_phone import Call, Twiml, parse_task

Phone = Callable[..., Call]
ANNA_NUMBER, ANNA_PIN = ACCOUNTS[0][0], ACCOUNTS[0][3]


def screen_pop(client: FlaskClient, call: Call) -> dict[str, Any]:
    answer = client.get(f"/api/calls/{call.call_sid}",
                        headers={"Authorization": f"Bearer {API_TOKEN}"})  # fmt: skip
    body: dict[str, Any] = answer.get_json()
    return body


def assert_safe(twiml: Twiml) -> None:
    """Routed to an agent, not identified, nothing of the account shown."""
    task = parse_task(twiml)
    assert (task["identified"], task["reason"]) == (False, "unavailable")
    assert task["customer_number"] is None and task["name"] is None


def replay(call: Call, answered: Twiml, digits: str | None) -> Twiml:
    """POST again to the Gather of ``answered`` (a captured earlier request)."""
    current = call.last
    call.last = answered
    try:
        return call.press(digits) if digits is not None else call.silence()
    finally:
        call.last = current


def test_replays_after_verification_change_nothing(phone: Phone, client: FlaskClient) -> None:
    """Re-POSTing the menu step, /voice or the fallback URL after the call was verified
    keeps it identified in the API, and each answer is safe."""
    call = phone(caller=SINGLE_OWNER)
    menu = call.start()
    call.press("1")
    assert parse_task(call.press(ANNA_PIN))["identified"] is True
    before = screen_pop(client, call)
    assert_safe(replay(call, menu, "1"))
    assert_safe(Twiml.parse(call.post("/voice", call.params())))
    assert_safe(Twiml.parse(call.post("/voice/fallback", call.params(ErrorCode="11200"))))
    assert screen_pop(client, call) == before
    assert before["identified"] is True and before["reason"] == "verified"


def test_a_retried_step_gets_the_same_answer(phone: Phone, client: FlaskClient) -> None:
    """The request a call answered last, sent again, gets the same TwiML and changes
    nothing; an earlier one gets the safe answer."""
    call = phone(caller=SINGLE_OWNER)
    menu = call.start()
    pin_prompt = call.press("1")
    assert replay(call, menu, "1").text() == pin_prompt.text()
    again = Twiml.parse(call.post("/voice", call.params()))
    assert_safe(again)  # /voice is no longer the call's last answer
    wrong = call.press("000000")
    assert replay(call, pin_prompt, "000000").text() == wrong.text()
    assert_safe(replay(call, menu, "1"))
    assert screen_pop(client, call)["attempts"] == 1


def test_a_retried_start_gets_the_menu_again(phone: Phone) -> None:
    """/voice twice for a new call (Twilio retrying the start): the same menu twice."""
    call = phone(caller=SINGLE_OWNER)
    first = call.start()
    assert call.start().text() == first.text()


def test_a_retried_pin_is_counted_once(
    phone: Phone, services: Services, redis_client: redis.Redis
) -> None:
    """A wrong PIN whose request comes again is compared and counted once."""
    call = phone(caller=SINGLE_OWNER)
    pin_prompt = call.walk("1")
    call.press("000000")
    replay(call, pin_prompt, "000000")
    subject = services.hasher.subject("account", ANNA_NUMBER)
    assert redis_client.get(services.keys.account(subject).fails) == b"1"


def post_pin(call: Call, action: str) -> str:
    """The PIN request, posted as Twilio posts it; the TwiML answered."""
    return call.post(action, call.params(Digits="000000")).get_data(as_text=True)


@pytest.mark.parametrize("overrides", [{"server": {"public_base_url": "http://ivr.test"}}])
def test_a_retry_racing_its_first_request_waits_for_its_answer(
    app: Flask, services: Services, redis_client: redis.Redis
) -> None:
    """Five copies of one PIN request at the same moment (a retry sent while the first
    is at work): one counts and compares, all five get its answer."""
    with serving(app) as base:
        poster = HttpPoster([base], Webhooks())
        call = Call(client=poster, auth_token=AUTH_TOKEN, caller=SINGLE_OWNER,
                    base="http://ivr.test")  # fmt: skip
        call.walk("1")
        action = call.action_url()
        answers = race([partial(post_pin, call, action) for _ in range(5)])
    assert len(set(answers)) == 1 and "<Gather" in answers[0]
    subject = services.hasher.subject("account", ANNA_NUMBER)
    assert redis_client.get(services.keys.account(subject).fails) == b"1"
