"""Lockout as callers experience it, across calls, through signed webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import ACCOUNTS, SINGLE_OWNER, UNKNOWN_NUMBER
from tests.twilio_phone import Call, Twiml, parse_task

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
FAST_LOCK = {
    "lockout": {
        "attempts_per_call": 3,
        "account_max_failures": 4,
        "account_lock_s": 2,
        "caller_max_failures": 6,
        "caller_lock_s": 2,
    }
}


def wrong_call(phone: Phone, caller: str, customer_number: str | None, wrong: int) -> Twiml:
    """One call that enters ``wrong`` wrong PINs (then stays silent if routed early)."""
    call = phone(caller=caller)
    twiml = call.walk("1") if customer_number is None else call.walk("1", customer_number + "#")
    for i in range(wrong):
        if twiml.routed:
            break
        twiml = call.press(f"{900000 + i}")
    return twiml


@pytest.mark.parametrize("overrides", [FAST_LOCK])
def test_lockout_across_calls_then_expiry(phone: Phone) -> None:
    """account_max_failures wrong PINs over two calls lock the account, even for the right
    PIN, until account_lock_s has passed."""
    wrong_call(phone, SINGLE_OWNER, None, 3)
    second = phone(caller=SINGLE_OWNER)
    second.walk("1", "900010")
    locked = second.press("900011")
    task = parse_task(locked)
    assert task["reason"] == "locked" and task["identified"] is False
    right_pin = phone(caller=SINGLE_OWNER)
    right_pin.walk("1")
    assert parse_task(right_pin.press(PIN_ANNA))["reason"] == "locked"
    time.sleep(2.2)
    after = phone(caller=SINGLE_OWNER)
    after.walk("1")
    assert parse_task(after.press(PIN_ANNA))["identified"] is True


@pytest.mark.parametrize("overrides", [FAST_LOCK])
def test_caller_spraying_across_accounts_is_blocked(phone: Phone) -> None:
    """One number trying PINs on many accounts is blocked after caller_max_failures."""
    attacker = UNKNOWN_NUMBER
    wrong_call(phone, attacker, "200002", 3)
    wrong_call(phone, attacker, "200003", 3)
    final = wrong_call(phone, attacker, "200001", 1)
    assert parse_task(final)["reason"] == "locked"
    # The legitimate owner of 200001, calling from their own number, is not affected.
    owner = phone(caller=SINGLE_OWNER)
    owner.walk("1")
    assert parse_task(owner.press(PIN_ANNA))["identified"] is True


def test_unknown_and_known_customer_numbers_sound_identical(phone: Phone) -> None:
    """Unknown customer numbers get exactly the same prompts and outcome as known ones."""
    transcripts: list[list[object]] = []
    for customer_number in ("200002", "987654"):
        call = phone(caller="anonymous")
        call.walk("1", customer_number + "#", "000000", "000001", "000002")
        heard: list[object] = [(t.verbs, t.says()) for t in call.history]
        final = parse_task(call.history[-1])
        final.pop("call_sid")
        # What the agent is told (never the caller): the number typed, or "unknown".
        final.pop("claimed_customer_number")
        final.pop("claimed_unknown")
        heard.append(sorted(final.items()))
        transcripts.append(heard)
    assert transcripts[0] == transcripts[1]


@pytest.mark.parametrize("overrides", [FAST_LOCK])
def test_unknown_account_locks_like_a_known_one(phone: Phone) -> None:
    """An unknown customer number is locked after the same number of failures."""
    results = []
    for customer_number in ("200002", "987654"):
        wrong_call(phone, "anonymous", customer_number, 3)
        results.append(parse_task(wrong_call(phone, "+4930777777", customer_number, 3)))
    assert [r["reason"] for r in results] == ["locked", "locked"]


def test_a_withheld_sprayer_does_not_lock_out_withheld_holders_for_long(phone: Phone) -> None:
    """Ten wrong PINs from withheld numbers (the named callers' whole limit) leave the
    withheld bucket open: an account holder calling withheld is still identified."""
    for customer_number in ("200002", "200003", "987654", "987655"):
        wrong_call(phone, "anonymous", customer_number, 3 if customer_number != "987655" else 1)
    holder = phone(caller="anonymous")
    holder.walk("1", "200001#")
    assert parse_task(holder.press(PIN_ANNA))["identified"] is True
