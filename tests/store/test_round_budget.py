"""A webhook's rounds wait for Redis as long as their budget allows, on every topology.

A budget (:class:`ivr.deadline.Budget`) replaces the socket timeout for each read of a
round: a Redis that answers late but surely is waited for past ``socket_timeout_s``, a
frozen one fails the round when the budget ends, and a spent budget sends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from ivr.config import RedisSettings
from ivr.deadline import Budget
from ivr.exceptions import DependencyError
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from ivr.store.rounds import command
from tests.fleet.cluster import ClusterHarness
from tests.fleet.sentinel import SentinelHarness
from tests.redis_server import RedisProcess
from tests.slow_redis import slowed

PROBE = "budget round"
SOCKET_TIMEOUT_S = 0.2
# Longer than the socket timeout, shorter than a cluster node's or a sentinel's
# failure detection (1 s in tests/fleet), so nothing fails over meanwhile.
SLOW_S = 0.4
ROOMY_S = 2.0


def short_link(url: str) -> Link:
    """A link whose reads time out after 0.2 s without a budget; one pooled connection
    (on a single Redis), so every round reuses the same socket."""
    return open_link(RedisSettings(url=url, socket_timeout_s=SOCKET_TIMEOUT_S,
                                   max_connections=1))  # fmt: skip


def waited(link: Link, keys: list[str], budget: Budget | None) -> tuple[list[object], float]:
    """SET each key in one round; the replies and how long the round took."""
    started = time.monotonic()
    replies = link.send([command("SET", key, "1") for key in keys], PROBE, budget=budget)
    return replies, time.monotonic() - started


def roomy() -> Budget:
    return Budget(time.monotonic() + ROOMY_S)


@pytest.fixture
def sentinel() -> Iterator[SentinelHarness]:
    """A primary, two replicas and three sentinels for this test."""
    with SentinelHarness() as harness:
        yield harness


def test_a_budget_waits_for_a_slow_redis_then_the_socket_timeout_is_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A round with a budget gets the reply of a Redis that answers after the socket
    timeout; the pooled connection then has its own timeout again (redis-py restored
    it): a round without a budget on the same socket times out after 0.2 s."""
    link = short_link(redis_url)
    try:
        link.send([command("PING", "x")], PROBE)  # the one pooled connection is open
        busy = slowed(redis_client, SLOW_S)
        replies, took = waited(link, ["k"], roomy())
        busy.join()
        assert replies == [b"OK"]
        assert SOCKET_TIMEOUT_S < took < ROOMY_S
        busy = slowed(redis_client, SLOW_S)
        started = time.monotonic()
        with pytest.raises(DependencyError):
            link.send([command("GET", "k")], PROBE)
        took = time.monotonic() - started
        busy.join()
        assert SOCKET_TIMEOUT_S - 0.05 < took < SLOW_S - 0.1
    finally:
        link.close()


def test_a_frozen_redis_fails_a_round_when_its_budget_ends() -> None:
    """A frozen Redis (SIGSTOP) fails a round with a 0.6 s budget after 0.6 s: not
    after the 0.2 s socket timeout, and not later than the budget."""
    server = RedisProcess()
    server.start()
    link = short_link(server.url)
    try:
        link.send([command("PING", "x")], PROBE)
        server.pause()
        started = time.monotonic()
        with pytest.raises(DependencyError):
            link.send([command("GET", "k")], PROBE, budget=Budget(started + 0.6))
        took = time.monotonic() - started
        assert 0.55 < took < 0.8
    finally:
        server.resume()
        link.close()
        server.stop()


def test_a_spent_budget_sends_nothing(link: Link, redis_client: redis.Redis) -> None:
    """Once the budget is spent a round is not sent: it fails (a tolerant round's
    results are the error) and Redis never ran it."""
    spent = Budget(time.monotonic())
    with pytest.raises(DependencyError):
        link.send([command("INCR", "n")], PROBE, budget=spent)
    (result,) = link.send([command("INCR", "n")], PROBE, tolerant=True, budget=spent)
    assert isinstance(result, redis.TimeoutError)
    assert redis_client.get("n") is None


def test_a_cluster_round_waits_for_its_slow_node(cluster: ClusterHarness) -> None:
    """On a cluster, a round over three nodes waits within its budget for the node that
    answers late; a spent budget sends nothing to any node."""
    keys = ["{a}k", "{b}k", "{c}k"]
    nodes = {cluster.node_for_key(key).port for key in keys}
    assert len(nodes) == 3
    link = short_link(cluster.url)
    slow = cluster.node_for_key(keys[0]).client(socket_timeout=ROOMY_S)
    try:
        link.send([command("PING", key) for key in keys], PROBE)  # slot map, connections
        busy = slowed(slow, SLOW_S)
        replies, took = waited(link, keys, roomy())
        busy.join()
        assert replies == [b"OK"] * 3
        assert SOCKET_TIMEOUT_S < took < ROOMY_S
        counters = [f"{key}:n" for key in keys]
        spent = Budget(time.monotonic())
        with pytest.raises(DependencyError):
            link.send([command("INCR", counter) for counter in counters], PROBE, budget=spent)
        assert link.send([command("EXISTS", counter) for counter in counters], PROBE) == [0] * 3
    finally:
        slow.close()
        link.close()


def test_a_sentinel_primary_slow_to_answer_is_waited_for(sentinel: SentinelHarness) -> None:
    """Through Sentinel, a round with a budget waits for a primary that answers after
    the socket timeout (the Sentinel connection passes the read's timeout on)."""
    link = short_link(sentinel.url)
    primary = sentinel.primary().client(socket_timeout=ROOMY_S)
    try:
        link.send([command("PING", "x")], PROBE)
        busy = slowed(primary, SLOW_S)
        replies, took = waited(link, ["k"], roomy())
        busy.join()
        assert replies == [b"OK"]
        assert SOCKET_TIMEOUT_S < took < ROOMY_S
    finally:
        primary.close()
        link.close()
