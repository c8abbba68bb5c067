"""Placing calls on a running fleet: which node each webhook goes to, and what became of
the call."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import UNKNOWN_NUMBER
from tests.fleet.fleet import Fleet
from tests.twilio_phone import Call, Twiml, parse_task


def on(node: int) -> Callable[[int], int]:
    """Every webhook to ``node``."""
    return lambda _: node


def alternating(offset: int) -> Callable[[int], int]:
    """Webhooks alternate between the nodes, the first on node ``offset % 2``."""
    return lambda n: (n + offset) % 2


def follow(call: Call, *keys: str) -> Twiml:
    """Start ``call`` and answer each Gather with the next of ``keys`` until it is routed
    (or the keys run out); the last answer. Never asserts on the way: a call routed
    early (unavailable) simply stops."""
    twiml = call.start()
    for key in keys:
        if twiml.gather is None:
            break
        twiml = call.press(key)
    return twiml


def outcome(twiml: Twiml) -> tuple[bool, str]:
    """(identified, reason) of a routed call."""
    task = parse_task(twiml)
    return bool(task["identified"]), str(task["reason"])


def settle(fleet: Fleet, timeout_s: float = 15.0) -> None:
    """Wait until both nodes serve a whole call again (after a change of topology)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answers = [follow(fleet.phone(UNKNOWN_NUMBER, pick=on(i)), "0") for i in (0, 1)]
        if all(a.routed and outcome(a) == (False, "not_required") for a in answers):
            return
        time.sleep(0.2)
    pytest.fail("the fleet did not serve calls again in time")
