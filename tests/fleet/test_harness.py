"""Self-tests of the fleet harness: the topologies form, fail over and heal on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from redis.cluster import ClusterNode
from redis.sentinel import Sentinel

from tests.bench.test_plan import production_line
from tests.conftest import API_TOKEN, AUTH_TOKEN, PEPPER, WORKFLOW_SID
from tests.fleet.cluster import ClusterHarness
from tests.fleet.ports import free_port, free_port_pair
from tests.fleet.postgres import libpq_url, postgres_database, server_url
from tests.fleet.redis_nodes import RedisNode
from tests.fleet.sentinel import SentinelHarness
from tests.fleet.web_nodes import WORKER_CLASS, WebNode, group_members

CLUSTER_FAILOVER_LIMIT_S = 15.0
SENTINEL_FAILOVER_LIMIT_S = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    """One cluster for the module; tests that fail a node over rejoin it before returning."""
    with ClusterHarness() as harness:
        yield harness


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelHarness]:
    """One sentinel setup for the module; tests that fail over rejoin the old primary."""
    with SentinelHarness() as harness:
        yield harness


@contextmanager
def cluster_client(harness: ClusterHarness) -> Iterator[redis.RedisCluster]:
    """A cluster client seeded with the running nodes."""
    running = [n.port for n in harness.nodes if n.running]
    seeds = [ClusterNode("127.0.0.1", port) for port in running]  # type: ignore[no-untyped-call,unused-ignore]
    client = redis.RedisCluster(startup_nodes=seeds, socket_timeout=2, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def write_replicated(node: RedisNode, key: str, value: str) -> None:
    """SET on ``node`` and wait until at least one replica has it."""
    with node.client() as client:
        client.set(key, value)
        assert client.wait(1, 1000) >= 1  # WAIT 1 1000


def test_ports_are_distinct_and_leave_room_for_the_bus() -> None:
    """Ports are never handed out twice and bus ports (port + 10000) stay below 65536."""
    ports = [free_port() for _ in range(20)] + [free_port(bus=True) for _ in range(20)]
    pairs = [free_port_pair() for _ in range(5)]
    given = ports + [p for pair in pairs for p in pair]
    assert len(set(given)) == len(given)
    assert all(port < 55535 for port in ports)
    assert all(bus == port + 10000 < 65536 for port, bus in pairs)


def test_cluster_forms_and_serves_keys(cluster: ClusterHarness) -> None:
    """The cluster has three primaries with one replica each and serves keys on any slot."""
    assert len(cluster.primaries()) == 3
    assert len(cluster.replicas()) == 3
    assert cluster.url.startswith("redis+cluster://") and cluster.url.count(",") == 2
    keys = {f"fleet:form:{i}": str(i) for i in range(20)}
    with cluster_client(cluster) as client:
        for key, value in keys.items():
            client.set(key, value)
        assert {key: client.get(key) for key in keys} == keys
    owners = {cluster.node_for_key(key).port for key in keys}
    assert owners == {node.port for node in cluster.primaries()}
    with cluster.node_for_key("fleet:form:0").client() as direct:
        assert direct.get("fleet:form:0") == b"0"


def test_cluster_failover_keeps_key_and_rejoins(cluster: ClusterHarness) -> None:
    """Killing a key's primary promotes its replica within 15 s with the replicated key intact,
    and the restarted node rejoins as a replica."""
    key = "fleet:failover"
    old = cluster.node_for_key(key)
    write_replicated(old, key, "kept")

    seconds = cluster.fail_over(old)
    print(f"cluster failover: {seconds:.2f} s")
    assert seconds < CLUSTER_FAILOVER_LIMIT_S
    heir = cluster.node_for_key(key)
    assert heir is not old and heir.role() == "master"
    with cluster_client(cluster) as client:
        assert client.get(key) == "kept"

    cluster.rejoin(old)
    assert old.role() == "slave"
    assert old.info()["master_port"] == str(heir.port)
    assert len(cluster.primaries()) == 3 and len(cluster.replicas()) == 3


def test_sentinel_setup_forms(sentinel: SentinelHarness) -> None:
    """The sentinels agree on one primary that has two in-sync replicas."""
    primary = sentinel.primary()
    assert primary.role() == "master"
    assert len(sentinel.replicas()) == 2
    assert sentinel.url.endswith("/mymaster") and sentinel.url.count(",") == 2
    assert primary.info()["connected_slaves"] == "2"


def test_sentinel_failover_keeps_key_and_rejoins(sentinel: SentinelHarness) -> None:
    """Killing the primary makes the sentinels promote a replica within 20 s with the
    replicated key intact, and the restarted old primary rejoins as a replica."""
    old = sentinel.primary()
    write_replicated(old, "fleet:failover", "kept")

    seconds = sentinel.fail_over()
    print(f"sentinel failover: {seconds:.2f} s")
    assert seconds < SENTINEL_FAILOVER_LIMIT_S
    new = sentinel.primary()
    assert new is not old and new.role() == "master"
    hosts = [("127.0.0.1", s.port) for s in sentinel.sentinels]
    options = {"socket_timeout": 1}
    watcher = Sentinel(hosts, sentinel_kwargs=options)  # type: ignore[no-untyped-call,unused-ignore]
    client: redis.Redis = watcher.master_for(  # type: ignore[no-untyped-call,unused-ignore]
        sentinel.service, socket_timeout=1, decode_responses=True
    )
    try:
        assert client.get("fleet:failover") == "kept"
    finally:
        # A client on a pool it was handed does not close that pool's sockets.
        client.close()
        client.connection_pool.disconnect()
        for connection in watcher.sentinels:
            connection.close()

    sentinel.rejoin(old)
    assert old.role() == "slave"
    # Of the primary the sentinels name once healthy again: on a starved CPU a sentinel
    # may time the new primary out too (down-after 1 s here) and fail over once more,
    # so it need not be `new` (seen in CI on 2026-12-05; stop 17's note on the cause).
    assert old.info()["master_port"] == str(sentinel.primary().port)


def test_postgres_database_is_fresh_and_dropped() -> None:
    """postgres_database yields a URL of a new, empty database and drops it afterwards."""
    with postgres_database() as url:
        name = sa.make_url(url).database
        assert name is not None and name.startswith("ivr_fleet_")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == name
                tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                assert conn.execute(sa.text(tables)).scalar_one() == 0
        finally:
            engine.dispose()
    with psycopg.connect(libpq_url(server_url()), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert found is None


def test_web_node_serves_dies_and_restarts(tmp_path: Path) -> None:
    """A web node answers /readyz with its Redis, kill() leaves no process behind, and it
    starts again on the same port."""
    port = free_port()
    config = tmp_path / "ivr.toml"
    with RedisNode() as store:
        config.write_text(
            f"""
[server]
public_base_url = "http://127.0.0.1:{port}"
[twilio]
auth_token = "{AUTH_TOKEN}"
[redis]
url = "redis://{store.addr}/0"
[pin_store]
url = "sqlite:///{tmp_path / "pins.sqlite3"}"
[routing]
mode = "enqueue"
workflow_sid = "{WORKFLOW_SID}"
""",
            encoding="utf-8",
        )
        env = {"IVR_CONFIG": str(config), "IVR_PIN_PEPPER": PEPPER, "IVR_API_TOKEN": API_TOKEN}
        with WebNode(env, port) as web:
            assert web.health("/readyz") == 200
            assert web.proc is not None
            group = web.proc.pid
            web.kill()
            assert web.health() is None and group_members(group) == []
            web.start()
            assert web.health() == 200


def test_web_nodes_run_the_documented_production_worker() -> None:
    """The fleet's web nodes use the worker class of the README's production line."""
    words = production_line()
    assert words[words.index("--worker-class") + 1] == WORKER_CLASS
