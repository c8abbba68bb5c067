"""Redis connections and failure behaviour: unreachable or hung Redis never hangs a webhook."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from ivr.config import LockoutSettings, RedisSettings
from ivr.exceptions import ConfigError, DependencyError
from ivr.flow.state import CallState
from ivr.store.calls import CallStore
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import Attempt, AttemptStatus, Lockout
from ivr.store.redis_client import (
    BlockingSentinelPool,
    dependency_errors,
    open_client,
    open_link,
)
from ivr.store.redis_url import Topology
from ivr.store.rounds import command
from tests.fleet.redis_nodes import RedisNode
from tests.redis_server import RedisProcess, free_port

SECRET = "s3cret-password"
# Generous for CI noise, far below Twilio's 15 s: one operation may cost one 0.25 s
# timeout, never a retry loop or the default 5 s socket timeout.
DEADLINE_S = 1.0


def single(settings: RedisSettings, **kwargs: Any) -> redis.Redis:
    """The redis-py client behind a standalone link (its pool is what is checked)."""
    client: redis.Redis = open_link(settings, **kwargs).client
    return client


def test_open_link_requires_a_url() -> None:
    """Without a URL in the settings or the call, opening is a configuration error."""
    with pytest.raises(ConfigError, match=r"\[redis\] url"):
        open_link(RedisSettings(url=""))


def test_url_argument_overrides_settings(redis_url: str) -> None:
    """An explicit url wins over settings.url (e.g. the embedded dev Redis)."""
    link = open_link(RedisSettings(url="redis://127.0.0.1:1/0"), url=redis_url)
    try:
        assert link.client.ping()
    finally:
        link.close()


def test_connection_options() -> None:
    """Timeouts come from settings, retries are off, the pool is bounded, replies are bytes."""
    client = single(RedisSettings(url="redis://127.0.0.1:1/3", socket_timeout_s=0.4))
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == RedisSettings().max_connections
    assert kwargs["socket_timeout"] == 0.4
    assert kwargs["socket_connect_timeout"] == 0.4
    assert kwargs["health_check_interval"] > 0
    assert kwargs["db"] == 3
    assert kwargs.get("decode_responses", False) is False
    assert kwargs["retry"].get_retries() == 0
    client.close()


def test_longer_reads_keep_a_short_connect() -> None:
    """A client for blocking reads waits longer for replies, never longer to connect."""
    client = single(RedisSettings(url="redis://127.0.0.1:1/0"), socket_timeout_s=9.0)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (9.0, 0.25)
    client.close()


def test_pool_size_comes_from_settings() -> None:
    """[redis] max_connections sizes each process's pool (e.g. for more gunicorn threads)."""
    client = single(RedisSettings(url="redis://127.0.0.1:1/0", max_connections=12))
    assert client.connection_pool.max_connections == 12
    client.close()


def test_sentinel_client_is_bounded_and_asks_the_sentinels() -> None:
    """A Sentinel URL gives a client whose bounded pool finds the primary through the
    sentinels (no I/O yet), with the same timeouts and no retries."""
    url = "redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/mymaster/2"
    link = open_link(RedisSettings(url=url, max_connections=7))
    pool = link.client.connection_pool
    assert isinstance(pool, BlockingSentinelPool) and isinstance(pool, SentinelConnectionPool)
    assert pool.max_connections == 7 and pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    assert pool.connection_kwargs["retry"].get_retries() == 0
    assert link.topology is Topology.SENTINEL
    link.close()


def test_unreachable_sentinels_fail_fast() -> None:
    """With no sentinel answering, a round fails within a second, naming no password."""
    url = f"redis+sentinel://:{SECRET}@127.0.0.1:{free_port()}/mymaster"
    link = open_link(RedisSettings(url=url))
    assert_fails_fast(lambda: link.send([command("GET", "k")], "probe"))
    link.close()


def test_unreachable_cluster_fails_fast_and_lazily() -> None:
    """A cluster that is down while the service starts does not stop the start; its first
    round fails within a second with DependencyError."""
    link = open_link(RedisSettings(url=f"redis+cluster://:{SECRET}@127.0.0.1:{free_port()}"))
    assert link.topology is Topology.CLUSTER
    assert_fails_fast(lambda: link.send([command("GET", "k")], "probe"))
    started = time.monotonic()  # the next webhooks do not each try every seed again
    assert_fails_fast(lambda: link.send([command("GET", "k")], "probe"))
    assert time.monotonic() - started < 0.05
    link.close()


def test_queue_client_refuses_a_cluster() -> None:
    """rq needs one Redis: a cluster URL for the queue is a configuration error."""
    with pytest.raises(ConfigError, match=r"\[queue\] url must not be a cluster"):
        open_client("redis+cluster://127.0.0.1:1", RedisSettings(), key="[queue] url")


def test_replies_are_bytes(redis_client: redis.Redis, redis_url: str) -> None:
    """Replies are raw bytes (decode_responses=False), as the stores expect."""
    link = open_link(RedisSettings(url=redis_url))
    try:
        link.client.set("k", "v", ex=10)
        assert link.client.get("k") == b"v"
    finally:
        link.close()


def test_dependency_errors_hides_details() -> None:
    """A Redis error becomes DependencyError naming the operation and error type only."""
    with pytest.raises(DependencyError) as info, dependency_errors("thing"):
        raise redis.ConnectionError(f"redis://:{SECRET}@host failed")
    assert str(info.value) == "redis: thing failed (ConnectionError)"


def test_lua_scripts_are_package_data() -> None:
    """Every script the stores load ships inside the ivr.store package."""
    files = {p.name for p in resources.files("ivr.store").iterdir()}
    expected = {
        "calls_save.lua",
        "events_publish.lua",
        "lockout_account.lua",
        "lockout_account_reset.lua",
        "lockout_caller.lua",
        "lockout_global.lua",
        "lockout_take_back.lua",
    }
    assert expected <= files


def operations(link: Link) -> dict[str, Callable[[], object]]:
    """One call of every store operation a webhook makes."""
    keys = KeyLayout()
    lockout = Lockout(link, keys, LockoutSettings())
    calls = CallStore(link, keys, ttl_s=60)
    state = CallState(call_sid="CA1", caller=None, language="de-DE", node="menu")
    settled = Attempt(AttemptStatus.ALLOWED, False, "acct", None)
    return {
        "begin": lambda: lockout.begin("acct", "caller"),
        "settle": lambda: calls.save(state, 0, lockout.settle(settled, verified=True)),
        "unlock": lambda: lockout.unlock_account("acct"),
        "lock_ttl": lambda: lockout.account_lock_ttl("acct"),
        "global": lockout.failures_last_minute,
        "load": lambda: calls.load("CA1"),
        "load_with_status": lambda: calls.load_with_status("CA1"),
        "create": lambda: calls.create(state),
        "save": lambda: calls.save(state, 0),
        "set_status": lambda: calls.set_status("CA1", "ringing"),
    }


OPERATIONS = (
    "begin",
    "settle",
    "unlock",
    "lock_ttl",
    "global",
    "load",
    "load_with_status",
    "create",
    "save",
    "set_status",
)


def test_operations_cover_the_list() -> None:
    """The parametrized failure tests below exercise every store operation listed here."""
    assert set(operations(open_link(RedisSettings(url="redis://127.0.0.1:1")))) == set(OPERATIONS)


def assert_fails_fast(operation: Callable[[], object]) -> None:
    started = time.monotonic()
    with pytest.raises(DependencyError) as info:
        operation()
    assert time.monotonic() - started < DEADLINE_S
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("name", OPERATIONS)
def test_unreachable_redis_raises_dependency_error(name: str) -> None:
    """With nothing listening on the port, every operation raises DependencyError quickly."""
    link = open_link(RedisSettings(url=f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"))
    assert_fails_fast(operations(link)[name])
    link.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisProcess]:
    """A dedicated redis-server this module may freeze without disturbing other tests."""
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("name", OPERATIONS)
def test_hung_redis_raises_dependency_error(server: RedisProcess, name: str) -> None:
    """A frozen Redis (SIGSTOP) makes every operation fail within a second, then recover."""
    link = open_link(RedisSettings(), url=server.url)
    ops = operations(link)
    ops[name]()  # warm: a pooled connection and loaded scripts, as in production
    server.pause()
    try:
        assert_fails_fast(ops[name])
    finally:
        server.resume()
    ops[name]()  # the next request works again without any manual reconnect
    link.close()


def test_hung_redis_on_a_fresh_connection(server: RedisProcess) -> None:
    """Connecting to a frozen Redis (TCP accepted, no reply) also fails within a second."""
    link = open_link(RedisSettings(), url=server.url)
    server.pause()
    try:
        assert_fails_fast(operations(link)["begin"])
    finally:
        server.resume()
    link.close()


def test_unix_socket_url(tmp_path: Path) -> None:
    """unix:///path?db=N reaches a Redis listening on a socket file, in that database."""
    socket_path = tmp_path / "redis.sock"
    with RedisNode(args=["--unixsocket", str(socket_path), "--unixsocketperm", "700"]):
        link = open_link(RedisSettings(url=f"unix://{socket_path}?db=3"))
        try:
            assert link.send([command("SET", "k", "v"), command("GET", "k")], "probe") == [
                b"OK",
                b"v",
            ]
            assert link.client.connection_pool.connection_kwargs["db"] == 3
        finally:
            link.close()
