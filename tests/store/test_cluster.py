"""Rounds and the lockout on a real Redis Cluster: one round over many nodes, MOVED
followed, replicas awaited, limits race-free across slots."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import partial

import pytest

from bench.probe import counting
from ivr.config import RedisSettings
from ivr.exceptions import DependencyError, ReplicaAckError
from ivr.store.audit_journal import AuditJournal
from ivr.store.events import EventStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import Attempt, AttemptStatus, Lockout
from ivr.store.redis_client import open_link
from ivr.store.redis_url import Topology
from ivr.store.rounds import command
from ivr.web.agent_throttle import LoginThrottle
from tests.fleet.cluster import ClusterHarness
from tests.racing import race
from tests.store.test_lockout import BASE, Counter
from tests.store.test_rounds import PROBE


@pytest.fixture
def link(cluster: ClusterHarness) -> Iterator[Link]:
    """The product's connection to the run's (flushed) cluster."""
    opened = open_link(RedisSettings(url=cluster.url))
    yield opened
    opened.close()


def tags_on_every_primary(cluster: ClusterHarness) -> list[str]:
    """One hash tag per primary (keys ``{tag}:x`` land on a different node each)."""
    found: dict[int, str] = {}
    for n in range(1000):
        node = cluster.node_for_key(f"{{t{n}}}")
        found.setdefault(node.port, f"t{n}")
        if len(found) == len(cluster.primaries()):
            return list(found.values())
    raise AssertionError("no tag for some primary")


def test_a_round_over_every_node_is_one_round(cluster: ClusterHarness, link: Link) -> None:
    """Commands for three nodes go out together: one sequential round, replies in order."""
    tags = tags_on_every_primary(cluster)
    link.send([command("SET", f"{{{t}}}:k", t) for t in tags], PROBE)  # connections open
    commands = [command("GET", f"{{{t}}}:k") for t in tags] + [command("INCR", "{t0}:n")]
    with counting() as counter:
        replies = link.send(commands, PROBE)
    assert replies == [t.encode() for t in tags] + [1]
    assert (counter.rounds, counter.trips) == (1, len(tags))  # {t0} is tags[0]: same node
    assert link.topology is Topology.CLUSTER


def test_moved_slots_are_followed(cluster: ClusterHarness, link: Link) -> None:
    """After a failover the old primary (back as a replica) answers MOVED: the command
    goes to the new owner in a follow-up round and runs exactly once."""
    key = "{moved}:n"
    assert link.send([command("INCR", key)], PROBE) == [1]  # slot map cached
    old = cluster.node_for_key(key)
    cluster.fail_over(old)
    cluster.rejoin(old)
    assert cluster.node_for_key(key) is not old
    with counting() as counter:
        assert link.send([command("INCR", key)], PROBE) == [2]
    assert counter.rounds >= 2  # asked the old primary, then the new one


def lockout_on(link: Link, **changes: int) -> Counter:
    return Counter(Lockout(link, KeyLayout(), dataclasses.replace(BASE, **changes)), link)


def test_counts_of_one_attempt_span_nodes(cluster: ClusterHarness, link: Link) -> None:
    """Caller, global and account counters live on different nodes; the limits hold."""
    c = lockout_on(link, caller_max_failures=3)
    attempts = [c.wrong("acct-a", f"caller-{i}") for i in range(7)]
    assert [a.status for a in attempts] == [AttemptStatus.ALLOWED] * 5 + [
        AttemptStatus.ACCOUNT_LOCKED
    ] * 2
    blocked = [c.wrong(f"acct-{i}", "sprayer") for i in range(6)]
    assert [a.status for a in blocked][3:] == [AttemptStatus.CALLER_LOCKED] * 3
    assert c.lockout.failures_last_minute() == 13
    keys = KeyLayout()
    nodes = {cluster.node_for_key(k).port for k in (keys.account("acct-a").fails,
             keys.caller("sprayer").fails, keys.global_failures(0)[0])}  # fmt: skip
    assert len(nodes) >= 2


def test_parallel_attempts_on_a_cluster_never_exceed_the_limit(cluster: ClusterHarness) -> None:
    """20 simultaneous submissions on one account, each on its own connection to the
    cluster: exactly account_max_failures are allowed."""
    links = [open_link(RedisSettings(url=cluster.url, socket_timeout_s=5)) for _ in range(20)]
    counters = [Counter(Lockout(lk, KeyLayout(), BASE), lk) for lk in links]

    def warm(i: int) -> None:
        links[i].send([command("GET", "warm")], PROBE)  # connected before the start line

    try:
        results: list[Attempt] = race(
            [partial(c.wrong, "acct-race", f"caller-{i}") for i, c in enumerate(counters)], warm
        )
    finally:
        for lk in links:
            lk.close()
    assert sum(r.allowed for r in results) == BASE.account_max_failures
    assert sum(r.locked_now for r in results) == 1


def test_counts_wait_for_the_shards_replica(cluster: ClusterHarness, link: Link) -> None:
    """A count whose shard's replica does not acknowledge fails closed (ReplicaAckError);
    the other shards are not held up, and it works again once the replica is back."""
    c = lockout_on(link)
    c.wrong("acct-b", "caller")  # the link learns which nodes have replicas
    primary = cluster.node_for_key(KeyLayout().account("acct-b").fails)
    (replica,) = [r for r in cluster.replicas()
                  if r.info().get("master_port") == str(primary.port)]  # fmt: skip
    assert replica.proc is not None
    replica.proc.send_signal(19)  # SIGSTOP
    try:
        with pytest.raises(ReplicaAckError):
            c.lockout.begin("acct-b", "caller")
    finally:
        replica.proc.send_signal(18)
    assert c.wrong("acct-b", "caller").allowed


def test_unknown_slot_owner_is_a_dependency_error() -> None:
    """A cluster none of whose seeds answers fails a round with DependencyError."""
    link = open_link(RedisSettings(url="redis+cluster://127.0.0.1:1"))
    with pytest.raises(DependencyError):
        link.send([command("GET", "k")], PROBE)
    link.close()


def test_durable_counts_follow_a_failover(cluster: ClusterHarness, link: Link) -> None:
    """A link that knew the account's primary had replicas counts again after that
    primary failed over and came back as a replica (answering MOVED, and refusing WAIT):
    the count goes to the new primary, once, and is acknowledged there."""
    c = lockout_on(link)
    c.wrong("acct-f", "caller")  # the link learns this primary has a replica
    fails = KeyLayout().account("acct-f").fails
    old = cluster.node_for_key(fails)
    cluster.fail_over(old)
    cluster.rejoin(old)
    assert c.wrong("acct-f", "caller").allowed
    assert cluster.node_for_key(fails).call("GET", fails) == "2"


def test_side_stores_work_on_a_cluster(cluster: ClusterHarness) -> None:
    """The console's board (stream, snapshot transaction, blocking read), the login
    throttle and the audit journal's consumer group run on a cluster as on one Redis."""
    link = open_link(RedisSettings(url=cluster.url), socket_timeout_s=5)
    keys = KeyLayout()
    try:
        board = EventStore(link, keys, 600)
        tip = board.publish("CA1", {"call_sid": "CA1"}, 1.0, False, 2.0)
        assert tip is not None and board.snapshot().tip == tip
        assert [e.call_sid for e in board.read("0-0", 100)] == ["CA1"]
        throttle = LoginThrottle(link, PinHasher({"k": b"p" * 20}, "k"), keys, max_failures=1)
        assert throttle.attempt("anna")
        assert not throttle.attempt("anna")
        journal = AuditJournal(link, keys)
        link.send(journal.entry("CA1", "1", None, "wrong", "2026-01-01T00:00:00Z"), PROBE)
        (entry,) = journal.read("reader", 10)
        journal.done([entry.entry_id])
        assert journal.backlog() == 0
    finally:
        link.close()
