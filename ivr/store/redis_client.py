"""Redis connections for every topology, tuned for webhooks, and the stores' error helper.

Twilio gives a webhook 15 s and the caller hears silence meanwhile, so a stuck Redis
must cost a fraction of a second, after which the caller is routed to an agent as not
identified (SPEC §6). Hence short socket timeouts, no retries (a retried EVALSHA could
count one PIN attempt twice) and a bounded pool that waits only as long as a socket
would. :func:`open_link` opens the state Redis (``[redis] url``: standalone, Sentinel or
Cluster, :mod:`ivr.store.redis_url`); :func:`open_client` opens one Redis for rq
(``[queue] url``: standalone or Sentinel).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.utils import SENTINEL

from ivr.config import RedisSettings
from ivr.exceptions import ConfigError, DependencyError
from ivr.store.link import ClusterLink, Link, SingleLink
from ivr.store.redis_url import RedisTarget, Topology, parse_redis_url
from ivr.store.rounds import Durability

# A pooled connection idle for longer is PINGed before use, so a half-open socket (NAT or
# load balancer dropped it) fails fast instead of eating a caller's request.
HEALTH_CHECK_INTERVAL_S = 30
# A Sentinel pool asks the sentinels who the primary is at least this often, not only when
# it connects: a former primary that still answers (it was frozen or cut off while a
# replica was promoted, or a second failover passed it over) keeps its role until the
# sentinels convert it, ~10 s later, and writes sent there meanwhile are lost.
PRIMARY_RECHECK_S = 0.5

log = logging.getLogger(__name__)


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool with the blocking pool's bound (beyond ``max_connections`` a request
    waits ``timeout`` for a free connection instead of failing at once or opening ever
    more sockets), and one that follows a change of primary within
    :data:`PRIMARY_RECHECK_S` even while its connections to the former one still work.

    redis-py asks the sentinels only when a connection connects; when the answer changes
    it closes the idle connections and drops busy ones when they are released (they are
    no longer the pool's). Re-asking on a timer makes that happen for pooled connections
    too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._primary_asked = float("-inf")

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        # Before the first connection nothing is pooled: connecting asks anyway.
        if self.master_address is not None and now - self._primary_asked >= PRIMARY_RECHECK_S:
            self._primary_asked = now  # one thread asks; the others go on meanwhile
            self._ask_primary()
        return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    def names_primary(self, node: str) -> bool:
        """Whether the sentinels name ``node`` (``host:port``) as the primary now; False
        when none can say."""
        address = self._ask_primary()
        return address is not None and f"{address[0]}:{address[1]}" == node

    def _ask_primary(self) -> tuple[str, int] | None:
        try:
            host, port = self.get_master_address()  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            # No sentinel can say (MasterNotFoundError is a ConnectionError): keep the
            # connections; connecting asks again and fails on its own if it must.
            log.warning("redis sentinel: primary not confirmed (%s)", type(exc).__name__)
            return None
        return str(host), int(port)


class SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, but one whose read is cut short (a timeout, a
    signal's exception: rq's warm shutdown interrupts its blocking pop) is closed, as
    every other redis-py connection does; left open, the next command on it reads the
    stale reply (rq's shutdown then hung for the pop's whole timeout)."""

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding, timeout=timeout, disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )  # fmt: skip


class SentinelSSLConnection(SentinelConnection, SSLConnection):
    """The same over TLS."""


@dataclass(frozen=True)
class Timeouts:
    """Socket timeouts of one client: reads, and opening a connection."""

    read_s: float
    connect_s: float

    @classmethod
    def of(cls, settings: RedisSettings, read_s: float | None, connect_s: float | None) -> Timeouts:
        """``[redis] socket_timeout_s`` unless a longer wait is asked for (blocking reads)."""
        default = settings.socket_timeout_s
        return cls(
            default if read_s is None else read_s, default if connect_s is None else connect_s
        )


def open_link(
    settings: RedisSettings,
    *,
    url: str | None = None,
    socket_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
) -> Link:
    """The state Redis at ``url`` (default ``[redis] url``); no I/O until first use."""
    target = _target(url or settings.url, "[redis] url")
    timeouts = Timeouts.of(settings, socket_timeout_s, connect_timeout_s)
    if target.topology is Topology.CLUSTER:
        durability = Durability(settings.replica_ack_timeout_ms)
        return ClusterLink(lambda: _cluster(target, settings, timeouts), durability)
    client = _single(target, settings, timeouts)
    pool = client.connection_pool
    if isinstance(pool, BlockingSentinelPool):
        durability = Durability(settings.replica_ack_timeout_ms, still_primary=pool.names_primary)
    else:
        durability = Durability(settings.replica_ack_timeout_ms)
    return SingleLink(client, target.topology, durability)


def open_client(
    url: str,
    settings: RedisSettings,
    *,
    key: str,
    socket_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
) -> redis.Redis:
    """One Redis (standalone, or a Sentinel group's primary) for ``url``, named ``key``."""
    target = _target(url, key)
    if target.topology is Topology.CLUSTER:
        raise ConfigError(f"config: {key} must not be a cluster (rq needs one Redis)")
    return _single(target, settings, Timeouts.of(settings, socket_timeout_s, connect_timeout_s))


def close_client(client: redis.Redis) -> None:
    """Close ``client`` and its pool: a client built on a pool it was handed does not own
    it, so ``client.close()`` alone leaves the pool's sockets open."""
    client.close()
    client.connection_pool.disconnect()


def _target(url: str, key: str) -> RedisTarget:
    if not url:
        raise ConfigError(f"config: {key} is not set")
    return parse_redis_url(url, key)


def _options(target: RedisTarget, timeouts: Timeouts) -> dict[str, Any]:
    return {
        "socket_timeout": timeouts.read_s,
        "socket_connect_timeout": timeouts.connect_s,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
        "username": target.username,
        "password": target.password,
    }


def _single(target: RedisTarget, settings: RedisSettings, timeouts: Timeouts) -> redis.Redis:
    options = _options(target, timeouts)
    bound = {"max_connections": settings.max_connections, "timeout": settings.socket_timeout_s}
    if target.topology is Topology.STANDALONE:
        # Built from the parsed fields, never from_url: one parser decides what a URL means.
        pool = redis.BlockingConnectionPool(**bound, **options, **_address(target))  # type: ignore[no-untyped-call,unused-ignore]
        return redis.Redis(connection_pool=pool)
    sentinel_options = {
        k: options[k] for k in ("socket_timeout", "socket_connect_timeout", "retry")
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
        list(target.nodes),
        # The URL's credentials are the sentinels' too (the limits library's convention).
        sentinel_kwargs={**sentinel_options, "username": target.username,
                         "password": target.password},
    )  # fmt: skip
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]
        target.service_name or "", redis_class=redis.Redis,
        connection_pool_class=BlockingSentinelPool, db=target.db,
        connection_class=SentinelSSLConnection if target.tls else SentinelConnection,
        **bound, **options,
    )  # fmt: skip
    return client


def _address(target: RedisTarget) -> dict[str, Any]:
    """Where a standalone Redis listens, as connection-pool arguments."""
    if target.unix_path is not None:
        return {"connection_class": UnixDomainSocketConnection, "path": target.unix_path,
                "db": target.db}  # fmt: skip
    host, port = target.nodes[0]
    connection = SSLConnection if target.tls else Connection
    return {"connection_class": connection, "host": host, "port": port, "db": target.db}


def _cluster(target: RedisTarget, settings: RedisSettings, timeouts: Timeouts) -> RedisCluster:
    options = _options(target, timeouts)
    options.pop("retry")  # RedisCluster takes its retry policy as its own argument
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],  # type: ignore[no-untyped-call,unused-ignore]
        retry=Retry(NoBackoff(), 0), require_full_coverage=False, ssl=target.tls,
        max_connections=settings.max_connections, **options,
    )  # fmt: skip


@contextmanager
def dependency_errors(operation: str) -> Iterator[None]:
    """Turn any Redis failure inside the block into :class:`DependencyError`.

    The message names only the operation and the error type: never a key, a URL (it may
    carry a password) or a value.
    """
    try:
        yield
    except DependencyError:
        raise
    except (redis.RedisError, OSError) as exc:
        raise DependencyError(f"redis: {operation} failed ({type(exc).__name__})") from exc


def text(value: Any) -> str:
    """A Redis reply value as text (replies are bytes: decode_responses is off)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
