"""Redis round trips per webhook: the hot path's budget, counted at the client.

Each round trip costs a webhook more than anything it computes (one extra PING per step
cost ~17 % of the PIN step's throughput in ``bench/run``), so the counts are pinned here
and a change that adds one fails. Counted with the benchmark's own counter
(``bench.probe.counting``: every request/reply exchange of this thread, pipelines as one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from bench.probe import counting
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.twilio_phone import Call

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
CONSOLE: dict[str, Any] = {
    "secret_key": "console-secret-key-0123456789abcdef-xyz",
    "agents": {"anna": "pbkdf2:sha256:1$salt$" + "0" * 64},
}
# webhook -> round trips without the console, with it (board events published)
BUDGET = {
    "/voice": (1, 2),  # create; + board publish
    "menu": (2, 3),  # load, save (+ status in the same script); + publish
    "wrong PIN": (3, 4),  # load, count (caller, global, account), audit + save; + publish
    "right PIN": (3, 4),  # load, count, settlement (reset) + audit + save; + publish
    "status": (1, 2),  # status (the state read with it); + publish for the board
}


def warm_up(phone: Phone, client: redis.Redis) -> None:
    """One whole call first (scripts loaded, pooled connections open), from a clean slate."""
    client.script_flush()  # no test may depend on scripts an earlier test loaded
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "000001", PIN_ANNA)
    call.hang_up()


def walk_counting(call: Call) -> dict[str, int]:
    """Round trips of each webhook of a call that enters a wrong, then the right PIN."""
    trips: dict[str, int] = {}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("/voice", call.start),
        ("menu", lambda: call.press("1")),
        ("wrong PIN", lambda: call.press("000001")),
        ("right PIN", lambda: call.press(PIN_ANNA)),
        ("status", call.hang_up),
    ]
    for name, step in steps:
        with counting() as counter:
            step()
        trips[name] = counter.trips
    return trips


@pytest.mark.parametrize("overrides", [{}], ids=["console off"])
def test_round_trips_without_console(phone: Phone, redis_client: redis.Redis) -> None:
    """Without the console: /voice 1, menu 2, each PIN step 3, status callback 1."""
    warm_up(phone, redis_client)
    assert walk_counting(phone(caller=SINGLE_OWNER)) == {k: v[0] for k, v in BUDGET.items()}


@pytest.mark.parametrize("overrides", [{"console": CONSOLE}], ids=["console on"])
def test_round_trips_with_console(
    phone: Phone, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """With the console, each change costs one board publish more (the status rides along),
    and no observer (board, jobs, audit, metrics) fails along the way."""
    warm_up(phone, redis_client)
    assert walk_counting(phone(caller=SINGLE_OWNER)) == {k: v[1] for k, v in BUDGET.items()}
    assert [r.getMessage() for r in caplog.records if r.name == "ivr.observers"] == []
