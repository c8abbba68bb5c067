"""Redis connections and failure behaviour: unreachable or hung Redis never hangs a webhook."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from importlib import resources

import pytest
import redis

from ivr.config import LockoutSettings, RedisSettings
from ivr.exceptions import ConfigError, DependencyError
from ivr.flow.state import CallState
from ivr.store.calls import CallStore
from ivr.store.lockout import Lockout
from ivr.store.redis_client import connect, dependency_errors
from tests.redis_server import RedisProcess, free_port

SECRET = "s3cret-password"
# Generous for CI noise, far below Twilio's 15 s: one operation may cost one 0.25 s
# timeout, never a retry loop or the default 5 s socket timeout.
DEADLINE_S = 1.0


def test_connect_requires_a_url() -> None:
    """Without a URL in the settings or the call, connect() is a configuration error."""
    with pytest.raises(ConfigError, match=r"\[redis\] url"):
        connect(RedisSettings(url=""))


def test_connect_url_argument_overrides_settings(redis_url: str) -> None:
    """An explicit url wins over settings.url (e.g. the embedded dev Redis)."""
    client = connect(RedisSettings(url="redis://127.0.0.1:1/0"), redis_url)
    try:
        assert client.ping()
    finally:
        client.close()


def test_connect_options() -> None:
    """Timeouts come from settings, retries are off, the pool is bounded, replies are bytes."""
    client = connect(RedisSettings(url="redis://127.0.0.1:1/3", socket_timeout_s=0.4))
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


def test_pool_size_comes_from_settings() -> None:
    """[redis] max_connections sizes each process's pool (e.g. for more gunicorn threads)."""
    client = connect(RedisSettings(url="redis://127.0.0.1:1/0", max_connections=12))
    assert client.connection_pool.max_connections == 12
    client.close()


def test_connect_returns_bytes(redis_client: redis.Redis, redis_url: str) -> None:
    """Replies are raw bytes (decode_responses=False), as the stores expect."""
    client = connect(RedisSettings(), redis_url)
    try:
        client.set("k", "v", ex=10)
        assert client.get("k") == b"v"
    finally:
        client.close()


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
        "lockout_account.lua",
        "lockout_account_reset.lua",
        "lockout_caller.lua",
        "lockout_caller_success.lua",
        "lockout_global.lua",
    }
    assert expected <= files


def operations(client: redis.Redis) -> dict[str, Callable[[], object]]:
    """One call of every store operation a webhook makes."""
    lockout = Lockout(client, LockoutSettings())
    calls = CallStore(client, ttl_s=60)
    state = CallState(call_sid="CA1", caller=None, language="de-DE", node="menu")
    return {
        "begin": lambda: lockout.begin("acct", "caller"),
        "succeeded": lambda: lockout.succeeded("acct", None),
        "unlock": lambda: lockout.unlock_account("acct"),
        "lock_ttl": lambda: lockout.account_lock_ttl("acct"),
        "global": lockout.global_alert,
        "load": lambda: calls.load("CA1"),
        "create": lambda: calls.create(state),
        "save": lambda: calls.save(state, 0),
        "expire": lambda: calls.expire("CA1", 10),
        "set_status": lambda: calls.set_status("CA1", "ringing"),
        "status": lambda: calls.status("CA1"),
    }


OPERATIONS = (
    "begin",
    "succeeded",
    "unlock",
    "lock_ttl",
    "global",
    "load",
    "create",
    "save",
    "expire",
    "set_status",
    "status",
)


def test_operations_cover_the_list() -> None:
    """The parametrized failure tests below exercise every store operation listed here."""
    assert set(operations(redis.Redis())) == set(OPERATIONS)


def assert_fails_fast(operation: Callable[[], object]) -> None:
    started = time.monotonic()
    with pytest.raises(DependencyError) as info:
        operation()
    assert time.monotonic() - started < DEADLINE_S
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("name", OPERATIONS)
def test_unreachable_redis_raises_dependency_error(name: str) -> None:
    """With nothing listening on the port, every operation raises DependencyError quickly."""
    client = connect(RedisSettings(url=f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"))
    assert_fails_fast(operations(client)[name])
    client.close()


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
    client = connect(RedisSettings(), server.url)
    ops = operations(client)
    ops[name]()  # warm: a pooled connection and loaded scripts, as in production
    server.pause()
    try:
        assert_fails_fast(ops[name])
    finally:
        server.resume()
    ops[name]()  # the next request works again without any manual reconnect
    client.close()


def test_hung_redis_on_a_fresh_connection(server: RedisProcess) -> None:
    """Connecting to a frozen Redis (TCP accepted, no reply) also fails within a second."""
    client = connect(RedisSettings(), server.url)
    server.pause()
    try:
        assert_fails_fast(operations(client)["begin"])
    finally:
        server.resume()
    client.close()
