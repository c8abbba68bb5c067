"""A webhook whose PIN store (SQLite) blocks keeps its deadline; the late result is dropped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from ivr.config import Settings
from ivr.deadline import Deadline
from ivr.services import Services
from tests.conftest import ACCOUNTS, API_TOKEN, SINGLE_OWNER
from tests.sqlite_lock import locked
from tests.twilio_phone import Call, parse_task

Phone = Callable[..., Call]
PIN = ACCOUNTS[0][3]
DEADLINE_S = 1.0
# [pin_store] timeout_s: SQLite would wait this long for a lock on its own.
SLOW = {"server": {"webhook_deadline_s": DEADLINE_S}, "pin_store": {"timeout_s": 10.0}}


def screen_pop(client: FlaskClient, call: Call) -> dict[str, Any]:
    answer = client.get(f"/api/calls/{call.call_sid}",
                        headers={"Authorization": f"Bearer {API_TOKEN}"})  # fmt: skip
    body: dict[str, Any] = answer.get_json()
    return body


@pytest.mark.parametrize("overrides", [SLOW])
def test_a_locked_sqlite_store_is_cut_off_at_the_deadline(
    phone: Phone, client: FlaskClient, settings: Settings
) -> None:
    """With another process holding SQLite's exclusive lock, the PIN step answers within
    the deadline + 0.5 s as unavailable, its statement is interrupted (the call is saved
    as answered at once), and after the lock the next call is verified."""
    call = phone(caller=SINGLE_OWNER)
    assert call.walk("1").gather is not None
    holder = locked(settings)
    try:
        started = time.monotonic()
        twiml = call.press(PIN)
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # the interrupted work saves the late outcome meanwhile
        shown = screen_pop(client, call)
    finally:
        holder.release()
    assert elapsed < DEADLINE_S + 0.5
    task = parse_task(twiml)
    assert (task["identified"], task["reason"]) == (False, "unavailable")
    assert (shown["routed"], shown["identified"], shown["reason"]) == (True, False, "unavailable")
    after = parse_task(phone(caller=SINGLE_OWNER).walk("1", PIN))
    assert (after["identified"], after["reason"]) == (True, "verified")


@pytest.mark.parametrize("overrides", [SLOW])
def test_a_verification_done_too_late_to_save_is_discarded(
    phone: Phone, client: FlaskClient, settings: Settings, services: Services
) -> None:
    """A right PIN whose check ends before the deadline but without the time its save
    needs is not saved as verified: the caller hears unavailable, the call is stored
    so, and the attempt is audited as unavailable."""
    call = phone(caller=SINGLE_OWNER)
    assert call.walk("1").gather is not None
    holder = locked(settings)

    def release() -> None:
        holder.release()

    # The check ends at 0.8 s of a 1 s deadline: less than the save's reserve is left.
    assert services.calls.save_reserve_s > DEADLINE_S - 0.8
    threading.Timer(0.8, release).start()
    task = parse_task(call.press(PIN))
    assert (task["identified"], task["reason"]) == (False, "unavailable")
    shown = screen_pop(client, call)
    assert (shown["routed"], shown["identified"], shown["reason"]) == (True, False, "unavailable")
    journal = [entry.outcome for entry in services.journal.read("test-reader", 10)]
    assert journal == ["unavailable"]


def test_work_that_starts_after_its_deadline_still_saves_what_the_caller_heard(
    phone: Phone, client: FlaskClient, services: Services
) -> None:
    """A PIN step whose work starts with no time left (queued behind a full pool) counts
    and compares nothing, yet stores the call as the caller was answered: routed
    unavailable (its load is not refused for want of a budget)."""
    call = phone(caller=SINGLE_OWNER)
    assert call.walk("1").gather is not None
    at = services.calls.calls.load(call.call_sid)
    assert at is not None
    spent = Deadline(0.0)
    services.calls.step(call.call_sid, at.node, at.seq, PIN, None, spent)
    shown = screen_pop(client, call)
    assert (shown["routed"], shown["identified"], shown["reason"]) == (True, False, "unavailable")
    assert [entry.outcome for entry in services.journal.read("test-reader", 10)] == []
