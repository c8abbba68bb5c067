"""Redis round trips per webhook: the hot path's budget, counted at the client.

Each round trip costs a webhook more than anything it computes (one extra PING per step
cost ~17 % of the PIN step's throughput in ``bench/run``), so the counts are pinned here
and a change that adds one fails. Counted with the benchmark's own counter
(``bench.probe.counting``: every request/reply exchange of this thread, pipelines as one;
on a cluster, the sequential rounds: pipelines to several nodes written together are one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bench.probe import counting
from ivr import create_app
from ivr.services import build
from ivr.store.scripts import script
from tests.conftest import ACCOUNTS, AUTH_TOKEN, SINGLE_OWNER, make_settings, seed
from tests.fleet.cluster import ClusterHarness
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


def walk_counting(call: Call, rounds: bool = False) -> dict[str, int]:
    """Round trips (or sequential rounds) of each webhook of a call that enters a wrong,
    then the right PIN."""
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
        trips[name] = counter.rounds if rounds else counter.trips
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


@pytest.fixture
def cluster_phone(
    cluster: ClusterHarness, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> Iterator[Phone]:
    """Calls into an app whose state Redis is the run's cluster (rq on the run's Redis)."""
    settings = make_settings(
        cluster.url, f"sqlite:///{tmp_path / 'pins.sqlite3'}", {"queue": {"url": redis_url}}
    )
    services = build(settings)
    seed(services)
    client = create_app(settings, services).test_client()
    yield lambda caller: Call(client=client, auth_token=AUTH_TOKEN, caller=caller)
    services.close()


def load_scripts(cluster: ClusterHarness) -> None:
    """Every script cached on every primary, as in steady state (a new call's slot may
    be on a node that never ran them, or on a primary just promoted)."""
    for name in ("calls_save.lua", *(f"lockout_{n}.lua" for n in ("caller", "account",
                 "global", "account_reset", "take_back"))):  # fmt: skip
        for primary in cluster.primaries():
            primary.call("SCRIPT", "LOAD", script(name).source)


def test_rounds_on_a_cluster(cluster: ClusterHarness, cluster_phone: Phone) -> None:
    """On a cluster a PIN step takes 3 sequential rounds (budget 4): its counts for three
    slots go out together, and so do its settlement, audit entry and save."""
    load_scripts(cluster)
    call = cluster_phone(SINGLE_OWNER)
    call.walk("1", "000001", PIN_ANNA)  # connections open, replicas known
    assert walk_counting(cluster_phone(SINGLE_OWNER), rounds=True) == {
        k: v[0] for k, v in BUDGET.items()
    }
