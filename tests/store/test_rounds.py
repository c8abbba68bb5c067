"""Rounds on a single Redis: one pipeline, replies in order, NOSCRIPT and replicas handled."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator

import pytest
import redis

from ivr.config import RedisSettings
from ivr.exceptions import DependencyError, ReplicaAckError
from ivr.store.link import Link, SingleLink
from ivr.store.redis_client import open_link
from ivr.store.redis_url import Topology
from ivr.store.rounds import Durability, command, run
from ivr.store.scripts import LuaScript, script
from tests.fleet.redis_nodes import RedisNode, wait_for
from tests.redis_server import RedisProcess

COUNT_SOURCE = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
COUNT = LuaScript("count", COUNT_SOURCE, hashlib.sha1(COUNT_SOURCE.encode()).hexdigest())  # noqa: S324
PROBE = "test round"


def single_connection(url: str) -> Link:
    """A link whose pool holds one connection: a connection not given back blocks it."""
    return open_link(RedisSettings(url=url, max_connections=1, socket_timeout_s=0.2,
                                   replica_ack_timeout_ms=100))  # fmt: skip


def test_replies_come_back_in_order(link: Link) -> None:
    """Every reply comes back in order; a side channel's error reply becomes None."""
    replies = link.send(
        [command("SET", "k", "v"), command("INCR", "k", essential=False), command("GET", "k")],
        PROBE,
    )
    assert replies == [b"OK", None, b"v"]


def test_a_round_reuses_its_connection(link: Link, redis_client: redis.Redis) -> None:
    """Rounds share a pooled socket instead of opening one each."""
    link.send([command("SET", "a", "1")], PROBE)
    before = redis_client.info("stats")["total_connections_received"]
    for _ in range(5):
        link.send([command("SET", "a", "1"), command("GET", "a")], PROBE)
    assert redis_client.info("stats")["total_connections_received"] == before


def test_a_round_after_a_timeout_reads_no_stale_reply() -> None:
    """A round that timed out fails; the next one reads its own reply, not the old one."""
    server = RedisProcess()
    server.start()
    link = single_connection(server.url)
    try:
        assert link.send([command("SET", "k", "0")], PROBE) == [b"OK"]
        server.pause()
        with pytest.raises(DependencyError):
            link.send([command("SET", "k", "1")], PROBE)
        server.resume()
        time.sleep(0.05)  # the frozen SET may still run: read after it
        assert link.send([command("GET", "k")], PROBE) in ([b"0"], [b"1"])
        assert link.send([command("PING", "x")], PROBE) == [b"x"]
    finally:
        link.close()
        server.stop()


def test_scripts_and_commands_run_in_order(link: Link, redis_client: redis.Redis) -> None:
    """Scripts run by EVALSHA beside plain commands; results come back in order."""
    redis_client.script_load(COUNT_SOURCE)
    replies = link.send(
        [run(COUNT, ["n"], [2]), command("EXPIRE", "n", 60), run(COUNT, ["n"], [3])], PROBE
    )
    assert replies == [2, 1, 5]
    assert 0 < redis_client.ttl("n") <= 60


def test_a_forgotten_script_runs_exactly_once(link: Link, redis_client: redis.Redis) -> None:
    """After SCRIPT FLUSH (a Redis restart) each script runs exactly once, from its source.

    The re-run comes after the round's other commands: rounds must not depend on that
    order (the app's do not: settlement, audit entry and save are independent).
    """
    redis_client.script_flush()
    assert link.send([run(COUNT, ["n"], [2]), command("SET", "m", 10)], PROBE) == [2, b"OK"]
    assert redis_client.get("n") == b"2"
    assert link.send([run(COUNT, ["n"], [1])], PROBE) == [3]  # cached by EVAL


def test_failed_side_channel_is_logged_not_raised(
    link: Link, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-essential command that fails gives None and a warning; the rest still runs."""
    redis_client.set("text", "x")
    commands = [command("XADD", "text", "*", "f", "v", essential=False, what="audit entry"),
                command("SET", "saved", "1")]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert link.send(commands, PROBE) == [None, b"OK"]
    assert "audit entry in test round failed (ResponseError)" in caplog.text
    assert redis_client.get("saved") == b"1"


def test_failed_essential_command_raises(link: Link, redis_client: redis.Redis) -> None:
    """An essential command that fails makes the round raise DependencyError, naming no value."""
    redis_client.set("text", "secret-value")
    with pytest.raises(DependencyError) as raised:
        link.send([command("INCR", "text")], PROBE)
    assert "secret-value" not in str(raised.value)
    assert "test round" in str(raised.value)


def test_unreachable_redis_is_a_dependency_error() -> None:
    """No Redis at all: DependencyError, quickly (the caller is then handed over)."""
    link = open_link(RedisSettings(url="redis://127.0.0.1:1/0"))
    with pytest.raises(DependencyError, match=PROBE):
        link.send([command("SET", "k", "v")], PROBE)
    link.close()


def test_empty_round_costs_nothing() -> None:
    """Nothing to send: no connection is needed at all."""
    assert open_link(RedisSettings(url="redis://127.0.0.1:1/0")).send([], PROBE) == []


def test_durable_round_without_replicas_waits_for_nothing(link: Link) -> None:
    """A standalone Redis has no replica: a durable round is just a round, at once."""
    started = time.monotonic()
    for _ in range(3):
        assert link.send([run(COUNT, ["n"], [1])], PROBE, durable=True)[0] >= 1
    assert time.monotonic() - started < 0.1  # never WAIT's 100 ms timeout


@pytest.fixture
def replicated() -> Iterator[tuple[RedisNode, RedisNode]]:
    """A primary with one replica attached and in sync."""
    primary = RedisNode()
    primary.start()
    replica = RedisNode(args=["--replicaof", "127.0.0.1", str(primary.port)])
    try:
        replica.start()
        wait_for("the replica's link", lambda: replica.info().get("master_link_status") == "up"
                 or None, 10)  # fmt: skip
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_durable_round_is_on_the_replica_when_it_returns(
    replicated: tuple[RedisNode, RedisNode],
) -> None:
    """On a primary with a replica, a durable round returns only once the replica has it."""
    primary, replica = replicated
    link = open_link(RedisSettings(url=f"redis://{primary.addr}/0"))
    reader = replica.client()
    try:
        for expected in range(1, 21):
            assert link.send([run(COUNT, ["n"], [1])], PROBE, durable=True) == [expected]
            assert reader.get("n") == str(expected).encode()
    finally:
        reader.close()
        link.close()


def test_durable_round_fails_closed_when_no_replica_acknowledges(
    replicated: tuple[RedisNode, RedisNode], caplog: pytest.LogCaptureFixture
) -> None:
    """A replica that does not acknowledge in time fails the round (ReplicaAckError) after
    the WAIT timeout, and says so in the log; once it is back, rounds succeed again."""
    primary, replica = replicated
    link = open_link(RedisSettings(url=f"redis://{primary.addr}/0", replica_ack_timeout_ms=100))
    try:
        link.send([run(COUNT, ["n"], [1])], PROBE, durable=True)  # learns of the replica
        assert replica.proc is not None
        replica.proc.send_signal(19)  # SIGSTOP: connected, but silent
        started = time.monotonic()
        with caplog.at_level(logging.ERROR), pytest.raises(ReplicaAckError):
            link.send([run(COUNT, ["n"], [1])], PROBE, durable=True)
        assert 0.09 < time.monotonic() - started < 0.5
        assert "no replica acknowledged within 100 ms" in caplog.text
        replica.proc.send_signal(18)  # SIGCONT
        assert link.send([run(COUNT, ["n"], [1])], PROBE, durable=True) == [3]
        assert link.send([command("GET", "n")], PROBE) == [b"3"]
    finally:
        if replica.proc is not None:
            replica.proc.send_signal(18)
        link.close()


def test_a_replica_unknown_so_far_is_waited_for(replicated: tuple[RedisNode, RedisNode]) -> None:
    """A link that does not know yet that its primary has a replica (first use, or a
    replica attached since) still waits for it: a silent replica fails the round."""
    primary, replica = replicated
    link = open_link(RedisSettings(url=f"redis://{primary.addr}/0"))
    assert replica.proc is not None
    replica.proc.send_signal(19)  # SIGSTOP
    try:
        with pytest.raises(ReplicaAckError):
            link.send([run(COUNT, ["n"], [5])], PROBE, durable=True)
    finally:
        replica.proc.send_signal(18)
        link.close()


@pytest.mark.parametrize(("named", "holds"), [(True, True), (False, False)])
def test_a_primary_left_by_its_replicas_counts_only_while_still_named(
    replicated: tuple[RedisNode, RedisNode], named: bool, holds: bool
) -> None:
    """When a primary's only replica leaves it (promoted in its place), a durable round on
    it stands only if the topology still names it primary; else ReplicaAckError."""
    primary, replica = replicated
    asked: list[str] = []

    def still_primary(node: str) -> bool:
        asked.append(node)
        return named

    client = redis.Redis(host="127.0.0.1", port=primary.port)
    link = SingleLink(client, Topology.SENTINEL, Durability(100, still_primary=still_primary))
    try:
        link.send([run(COUNT, ["n"], [1])], PROBE, durable=True)  # learns of the replica
        replica.call("REPLICAOF", "NO", "ONE")
        wait_for("the replica to leave", lambda: primary.info().get("connected_slaves") == "0"
                 or None, 10)  # fmt: skip
        if holds:
            assert link.send([run(COUNT, ["n"], [1])], PROBE, durable=True) == [2]
        else:
            with pytest.raises(ReplicaAckError, match="no longer the primary"):
                link.send([run(COUNT, ["n"], [1])], PROBE, durable=True)
        assert asked == [f"127.0.0.1:{primary.port}"]
    finally:
        link.close()


def test_lua_files_load_once() -> None:
    """A script is read once per process and named by the SHA1 Redis gives it."""
    lua = script("lockout_global.lua")
    assert lua is script("lockout_global.lua")
    assert lua.sha == hashlib.sha1(lua.source.encode()).hexdigest()  # noqa: S324
