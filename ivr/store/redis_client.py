"""Redis connections tuned for webhooks, plus helpers shared by the Redis stores.

Twilio gives a webhook 15 s and the caller hears silence meanwhile, so a stuck Redis
must cost a fraction of a second, after which the caller is routed to an agent as not
identified (SPEC §6). Hence short socket timeouts, no retries (a retried EVALSHA could
also count one PIN attempt twice) and a bounded pool that waits only as long as a
socket would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from ivr.config import RedisSettings
from ivr.exceptions import ConfigError, DependencyError

# A pooled connection idle for longer is PINGed before use, so a half-open socket (NAT or
# load balancer dropped it) fails fast instead of eating a caller's request.
HEALTH_CHECK_INTERVAL_S = 30


def connect(settings: RedisSettings, url: str | None = None) -> redis.Redis:
    """A client for ``url`` (default ``settings.url``) that never blocks a webhook long."""
    target = url or settings.url
    if not target:
        raise ConfigError("config: [redis] url is not set")
    timeout = settings.socket_timeout_s
    pool = redis.BlockingConnectionPool.from_url(
        target,
        max_connections=settings.max_connections,
        timeout=timeout,  # wait for a free pooled connection
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )
    return redis.Redis(connection_pool=pool)


@contextmanager
def dependency_errors(operation: str) -> Iterator[None]:
    """Turn any Redis failure inside the block into :class:`DependencyError`.

    The message names only the operation and the error type: never a key, a URL (it may
    carry a password) or a value.
    """
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise DependencyError(f"redis: {operation} failed ({type(exc).__name__})") from exc


def round_trip(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` on one pooled connection and read every reply: one round trip.

    The webhooks' few Redis round trips are most of their CPU; redis-py's Pipeline (and
    even a plain command) adds ~15-25 µs of set-up, retry and tracing hooks per round
    trip on top of packing and the socket calls, measured here. Replies are as Redis sent
    them (no response callbacks: ``SET`` gives ``b"OK"``); an error reply is returned as
    its exception object, like ``execute(raise_on_error=False)``. A connection failure
    drops the socket, so the pool never hands out one with unread replies.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands(commands))  # type: ignore[no-untyped-call]
        return [_reply(conn) for _ in commands]
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)


def _reply(conn: redis.connection.AbstractConnection) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as exc:  # an error reply; the connection is still in sync
        return exc


def text(value: Any) -> str:
    """A Redis reply value as text (replies are bytes: decode_responses is off)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def close(client: redis.Redis) -> None:
    """Close ``client`` and its pool: a client built on a pool it was handed does not own
    it, so ``client.close()`` alone leaves the pool's sockets open."""
    client.close()
    client.connection_pool.disconnect()


def script_source(name: str) -> str:
    """The text of the Lua script ``ivr/store/<name>``."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def load_script(client: redis.Redis, name: str) -> Script:
    """Register the Lua script ``ivr/store/<name>`` (no I/O: it is sent on first use)."""
    return client.register_script(script_source(name))
