"""Batched writes: one round trip, scripts reloaded after NOSCRIPT, side channels isolated."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from ivr.config import RedisSettings
from ivr.exceptions import DependencyError
from ivr.store.batch import Batch
from ivr.store.redis_client import connect, round_trip
from tests.redis_server import RedisProcess

COUNT_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def client(redis_url: str, redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A client built like the app's (bounded pool, short timeouts) on a flushed Redis."""
    app_client = connect(RedisSettings(url=redis_url))
    yield app_client
    app_client.close()


def single_connection(url: str) -> redis.Redis:
    """A client whose pool holds one connection: a connection not given back blocks it."""
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=1, timeout=0.2)
    return redis.Redis(connection_pool=pool)


def test_round_trip_returns_replies_and_error_replies(redis_url: str) -> None:
    """Every reply comes back in order; an error reply is an exception object, not raised."""
    client = single_connection(redis_url)
    replies = round_trip(client, [("SET", "k", "v"), ("INCR", "k"), ("GET", "k")])
    assert replies[0] == b"OK"
    assert isinstance(replies[1], redis.ResponseError)
    assert replies[2] == b"v"
    # The one connection went back to the pool, in sync: the next round trip reads its own.
    assert round_trip(client, [("GET", "k")]) == [b"v"]
    client.close()


def test_round_trip_reuses_its_connection(client: redis.Redis, redis_client: redis.Redis) -> None:
    """Round trips share a pooled socket instead of opening one each."""
    before = redis_client.info("stats")["total_connections_received"]
    for _ in range(5):
        round_trip(client, [("SET", "a", "1"), ("GET", "a")])
    assert redis_client.info("stats")["total_connections_received"] - before <= 1


def test_round_trip_after_a_timeout_reads_no_stale_reply() -> None:
    """A round trip that timed out raises; the next one reads its own reply, not the old one."""
    server = RedisProcess()
    server.start()
    pool = redis.BlockingConnectionPool.from_url(
        server.url, max_connections=1, timeout=0.2, socket_timeout=0.2
    )
    client = redis.Redis(connection_pool=pool)
    try:
        assert round_trip(client, [("PING",)]) == [b"PONG"]
        server.pause()
        with pytest.raises(redis.TimeoutError):
            round_trip(client, [("SET", "k", "1")])
        server.resume()
        assert round_trip(client, [("GET", "k")]) == [b"1"]
    finally:
        client.close()
        server.stop()


def test_batch_sends_scripts_and_commands_in_order(client: redis.Redis) -> None:
    """Scripts run by EVALSHA beside plain commands; results come back in order."""
    script = client.register_script(COUNT_SCRIPT)
    client.script_load(COUNT_SCRIPT)
    batch = Batch()
    batch.script(script, ["n"], [2])
    batch.command("EXPIRE", "n", 60)
    batch.script(script, ["n"], [3])
    assert len(batch) == 3
    assert batch.send(client) == [2, 1, 5]
    assert 0 < client.ttl("n") <= 60


def test_batch_reloads_a_script_redis_forgot_without_running_it_twice(
    client: redis.Redis,
) -> None:
    """After SCRIPT FLUSH (a Redis restart), each script runs exactly once, reloaded.

    The reloaded script runs after the batch's other commands: batches must not depend
    on that order (the app's do not: reset, audit entry and save are independent).
    """
    script = client.register_script(COUNT_SCRIPT)
    client.script_flush()
    batch = Batch()
    batch.script(script, ["n"], [2])
    batch.command("SET", "n", 10)
    assert batch.send(client) == [12, b"OK"]
    assert client.get("n") == b"12"


def test_failed_side_channel_is_logged_not_raised(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-essential command that fails gives None and a warning; the rest still runs."""
    client.set("text", "x")
    batch = Batch()
    batch.command("XADD", "text", "*", "f", "v", essential=False, what="audit entry")
    batch.command("SET", "saved", "1")
    with caplog.at_level(logging.WARNING):
        assert batch.send(client) == [None, b"OK"]
    assert "audit entry failed (ResponseError)" in caplog.text
    assert client.get("saved") == b"1"


def test_failed_essential_command_raises(client: redis.Redis) -> None:
    """An essential command that fails makes send() raise DependencyError, naming no value."""
    client.set("text", "secret-value")
    batch = Batch()
    batch.command("INCR", "text")
    with pytest.raises(DependencyError) as raised:
        batch.send(client)
    assert "secret-value" not in str(raised.value)


def test_unreachable_redis_is_a_dependency_error() -> None:
    """No Redis at all: DependencyError, quickly (the caller is then handed over)."""
    client = connect(RedisSettings(url="redis://127.0.0.1:1/0"))
    batch = Batch()
    batch.command("SET", "k", "v")
    with pytest.raises(DependencyError, match="batched write"):
        batch.send(client)
    client.close()


def test_empty_batch_costs_nothing() -> None:
    """Nothing to send: no connection is needed at all."""
    assert Batch().send(connect(RedisSettings(url="redis://127.0.0.1:1/0"))) == []
