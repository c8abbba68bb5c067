"""A PIN count that no replica acknowledges is never acted on (SPEC §5, failovers).

On a primary with a replica, a PIN step waits for the replica to have the count. If the
replica does not answer within ``[redis] replica_ack_timeout_ms`` the caller is routed
as not identified (reason ``unavailable``) even with the right PIN, the log says why
and ``ivr_replica_ack_failures_total`` counts it; the webhook still answers well within
the socket timeout.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import create_app
from ivr.services import build
from tests.conftest import ACCOUNTS, API_TOKEN, AUTH_TOKEN, SINGLE_OWNER, make_settings, seed
from tests.fleet.redis_nodes import RedisNode, wait_for
from tests.twilio_phone import Call, parse_task
from tests.web.test_metrics import scrape

ANNA_PIN = ACCOUNTS[0][3]


@pytest.fixture
def replicated() -> Iterator[tuple[RedisNode, RedisNode]]:
    """A primary with one replica attached and in sync."""
    with (
        RedisNode() as primary,
        RedisNode(args=["--replicaof", "127.0.0.1", str(primary.port)]) as replica,
    ):
        wait_for("the replica's link", lambda: replica.info().get("master_link_status") == "up"
                 or None, 10)  # fmt: skip
        yield primary, replica


def test_unacknowledged_count_routes_unavailable(
    replicated: tuple[RedisNode, RedisNode], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the replica frozen, the right PIN is not judged: unavailable, logged, counted;
    with it back, the next call is identified."""
    primary, replica = replicated
    settings = make_settings(
        f"redis://{primary.addr}/0", f"sqlite:///{tmp_path / 'pins.sqlite3'}",
        {"api": {"token": API_TOKEN}, "redis": {"replica_ack_timeout_ms": 100}},
    )  # fmt: skip
    services = build(settings)
    seed(services)
    client = create_app(settings, services).test_client()
    try:
        warm = Call(client=client, auth_token=AUTH_TOKEN, caller=SINGLE_OWNER)
        assert parse_task(warm.walk("1", ANNA_PIN))["identified"] is True
        call = Call(client=client, auth_token=AUTH_TOKEN, caller=SINGLE_OWNER)
        call.walk("1")
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            task = parse_task(call.press(ANNA_PIN))
            took = time.monotonic() - started
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        assert (task["identified"], task["reason"]) == (False, "unavailable")
        assert took < settings.redis.socket_timeout_s + 0.5
        assert "no replica acknowledged within 100 ms" in caplog.text
        assert scrape(client)[("ivr_replica_ack_failures_total", ())] == 1
        again = Call(client=client, auth_token=AUTH_TOKEN, caller=SINGLE_OWNER)
        assert parse_task(again.walk("1", ANNA_PIN))["identified"] is True
    finally:
        services.close()
