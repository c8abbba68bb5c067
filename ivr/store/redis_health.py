"""Start-up and readiness checks of the state Redis that protect the lockout (SPEC §5).

A lockout key that Redis evicts under memory pressure is a lock that silently ends early:
an attacker could fill memory to reset the counters. Every key the service writes has a
TTL, so every ``allkeys-*`` and ``volatile-*`` policy may evict lockout keys; only
``noeviction`` (writes fail when memory is full: the caller is then handed over as
unavailable, fail closed) keeps them.
"""

from __future__ import annotations

import logging

import redis

from ivr.config import RedisSettings
from ivr.exceptions import ConfigError, DependencyError
from ivr.store.link import Link

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


def eviction_problem(link: Link, settings: RedisSettings) -> str | None:
    """A one-line description of a primary whose ``maxmemory-policy`` may evict lockout
    keys (None when all are safe or ``[redis] allow_eviction``); DependencyError when a
    primary does not answer."""
    if settings.allow_eviction:
        return None
    try:
        for primary in link.primaries():
            policy = str(primary.info("memory").get("maxmemory_policy", SAFE_POLICY))
            if policy != SAFE_POLICY:
                where = _address(primary)
                return (
                    f"config: Redis {where} has maxmemory-policy {policy}, which may evict "
                    f"lockout keys; set maxmemory-policy noeviction there (or [redis] "
                    f"allow_eviction = true)"
                )
    except (redis.RedisError, OSError) as exc:
        raise DependencyError(f"redis: policy check failed ({type(exc).__name__})") from exc
    return None


def check_eviction_policy(link: Link, settings: RedisSettings) -> None:
    """Refuse to start (ConfigError) on an unsafe policy; only warn when Redis is down
    (``/readyz`` repeats the check, and the service must start without its Redis)."""
    try:
        problem = eviction_problem(link, settings)
    except DependencyError as exc:
        log.warning("maxmemory-policy not checked at start-up: %s", exc)
        return
    if problem is not None:
        raise ConfigError(problem)


def _address(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
