"""A number typed at the customer-number prompt stays in clear only if an account has it
(issue 11, item 8): callers type their PIN there by mistake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from ivr.services import Services
from tests.conftest import ACCOUNTS, API_TOKEN, UNKNOWN_NUMBER
from tests.twilio_phone import Call, parse_task
from tests.web.test_round_trips import CONSOLE

Phone = Callable[..., Call]
ANNA_NUMBER, ANNA_PIN = ACCOUNTS[0][0], ACCOUNTS[0][3]


def screen_pop(client: FlaskClient, call: Call) -> dict[str, Any]:
    answer = client.get(f"/api/calls/{call.call_sid}",
                        headers={"Authorization": f"Bearer {API_TOKEN}"})  # fmt: skip
    body: dict[str, Any] = answer.get_json()
    return body


@pytest.mark.parametrize("overrides", [{"console": CONSOLE}], ids=["console on"])
def test_a_pin_typed_as_customer_number_is_never_kept(
    phone: Phone, client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    """The PIN typed at the wrong prompt reaches neither Redis (state, board, journal)
    nor the API; the agent sees "unknown number"."""
    call = phone(caller=UNKNOWN_NUMBER)
    task = parse_task(call.walk("1", ANNA_PIN + "#", "000000", "000000", "000000"))
    assert (task["claimed_customer_number"], task["claimed_unknown"]) == (None, True)
    pop = screen_pop(client, call)
    assert (pop["claimed_customer_number"], pop["claimed_unknown"]) == (None, True)
    for key in redis_client.scan_iter("*"):
        kind = redis_client.type(key)
        dumped = repr(redis_client.dump(key)) + repr(key)
        if kind == b"stream":
            dumped += repr(redis_client.xrange(key))
        assert ANNA_PIN not in dumped, key
    (entry, *_) = services.journal.read("reader", 10)
    assert entry.customer_number.startswith("?") and ANNA_PIN not in entry.customer_number


def test_an_existing_customer_number_is_shown_as_claimed(phone: Phone, client: FlaskClient) -> None:
    """A number an account has is shown to the agent as claimed (not verified)."""
    call = phone(caller=UNKNOWN_NUMBER)
    call.walk("1", ANNA_NUMBER + "#", "000000", "000000", "000000")
    pop = screen_pop(client, call)
    assert (pop["claimed_customer_number"], pop["claimed_unknown"]) == (ANNA_NUMBER, False)
