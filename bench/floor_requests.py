"""Signed requests for the floors (``bench/floor_app.py``) and the calls they need in Redis.

What ``bench/workload.py`` does for the product, for the floors: each menu or
customer-number request gets a call of its own, prepared at that step (the floors, like
the product, refuse a replayed step); PIN requests need none (the PIN floor keeps no
conditions on the stored call). Public names:

- :class:`FloorCall` ``(hook: Webhook, key: str | None, state: bytes | None)``: one
  request (path with query, form parameters) and the call it needs (``None``: none).
  ``FloorCall.line(signer: Signer) -> str`` is its signed request line for
  ``bench/wrk/replay.lua`` (``Signer`` and ``Webhook`` from :mod:`bench.webhooks`).
- ``menu_call(call_sid: str, caller: str, key: str = "1") -> FloorCall``: a call at the
  menu (Gather 1) presses ``key``. With an account's phone, the floor answers the PIN
  Gather, like the product's menu step (c).
- ``customer_number_call(call_sid: str, caller: str, typed: str) -> FloorCall``: a call
  at the customer-number prompt (Gather 2, after key 1 from a number with no single
  account) types ``typed`` (e.g. ``acc.customer_number + "#"``); answered with the PIN
  Gather.
- ``pin_call(call_sid: str, caller: str, pin: str) -> FloorCall``: the PIN step's request,
  as the product gets it at Gather 2 (what the PIN floor has been sent all along).
- ``unknown_caller(acc: Account) -> str``: a valid mobile number that no account has
  (``bench.accounts`` numbers are ``+49151…``), for the customer-number step.
- ``prepare(client: redis.Redis, calls: Iterable[FloorCall], ttl_s: int = TTL_S) -> int``:
  store every call's state (SET NX with a TTL, pipelined); how many were stored. Raises
  if a call existed already (a CallSid reused).

Typical use, one call per request (``CallSids`` from :mod:`bench.webhooks`)::

    calls = [menu_call(sids.new(), account(i).phone) for i in range(n)]
    prepare(client, calls)
    lines = [call.line(signer) for call in calls]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from bench.accounts import Account
from bench.floor_app import CUSTOMER_NUMBER_PATH, MENU_PATH, TTL_S, call_key, call_state
from bench.webhooks import Signer, Webhook, voice_params

__all__ = [
    "FloorCall", "customer_number_call", "menu_call", "pin_call", "prepare", "unknown_caller",
]  # fmt: skip

LANGUAGE = "de-DE"  # the flow's default language: what a call starts in
PIPELINE_BATCH = 5_000


@dataclass(frozen=True)
class FloorCall:
    """One floor request and the call it needs in Redis (``key``/``state``; None: none)."""

    hook: Webhook
    key: str | None
    state: bytes | None

    def line(self, signer: Signer) -> str:
        """The signed request line for ``bench/wrk/replay.lua``."""
        return signer.line(self.hook)


def menu_call(call_sid: str, caller: str, key: str = "1") -> FloorCall:
    """A call at the menu (Gather 1) that presses ``key``."""
    hook = Webhook(f"{MENU_PATH}?n=1&lang={LANGUAGE}", voice_params(call_sid, caller, digits=key))
    return FloorCall(hook, call_key(call_sid), call_state("menu", 1, LANGUAGE))


def customer_number_call(call_sid: str, caller: str, typed: str) -> FloorCall:
    """A call at the customer-number prompt (Gather 2, topic payments) that types ``typed``."""
    params = voice_params(call_sid, caller, digits=typed)
    hook = Webhook(f"{CUSTOMER_NUMBER_PATH}?n=2&lang={LANGUAGE}", params)
    return FloorCall(
        hook, call_key(call_sid), call_state("customer_number", 2, LANGUAGE, "payments")
    )


def pin_call(call_sid: str, caller: str, pin: str) -> FloorCall:
    """The PIN step's request at Gather 2, as the product's PIN step gets it."""
    path = f"/voice/step?node=pin&n=2&lang={LANGUAGE}"
    return FloorCall(Webhook(path, voice_params(call_sid, caller, digits=pin)), None, None)


def unknown_caller(acc: Account) -> str:
    """A valid German mobile number of no account (the accounts' own are ``+49151…``)."""
    return "+49152" + acc.phone.removeprefix("+49151")


def prepare(client: redis.Redis, calls: Iterable[FloorCall], ttl_s: int = TTL_S) -> int:
    """Store the state each call needs (SET NX EX, pipelined); how many were stored."""
    states = [(call.key, call.state) for call in calls if call.key and call.state]
    for start in range(0, len(states), PIPELINE_BATCH):
        with client.pipeline(transaction=False) as pipe:
            for key, state in states[start : start + PIPELINE_BATCH]:
                pipe.set(key, state, nx=True, ex=ttl_s)
            if not all(pipe.execute()):
                raise RuntimeError("a floor call already existed in Redis (CallSid reused)")
    return len(states)
