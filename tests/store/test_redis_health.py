"""Lockout keys must not be evictable: the start-up and readiness check of maxmemory-policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ivr import create_app
from ivr.config import RedisSettings, Settings
from ivr.exceptions import ConfigError, DependencyError
from ivr.services import build
from ivr.store.redis_client import open_link
from ivr.store.redis_health import check_eviction_policy, eviction_problem
from tests.conftest import make_settings
from tests.redis_server import free_port


@pytest.fixture
def evicting(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The run's Redis with maxmemory-policy allkeys-lru (restored afterwards)."""
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield redis_client
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")


def settings_for(redis_url: str, tmp_path: Path, **redis: object) -> Settings:
    base = make_settings(redis_url, f"sqlite:///{tmp_path / 'pins.sqlite3'}")
    return dataclasses.replace(base, redis=dataclasses.replace(base.redis, **redis))  # type: ignore[arg-type]


@pytest.mark.usefixtures("evicting")
def test_an_evicting_policy_stops_the_start(redis_url: str, tmp_path: Path) -> None:
    """With allkeys-lru the service refuses to start, in one line naming the setting."""
    with pytest.raises(ConfigError) as info:
        build(settings_for(redis_url, tmp_path))
    message = str(info.value)
    assert "maxmemory-policy allkeys-lru" in message and "noeviction" in message
    assert "\n" not in message


@pytest.mark.parametrize("policy", ["volatile-ttl", "allkeys-random", "volatile-lfu"])
def test_every_evicting_policy_is_refused(redis_url: str, redis_client: redis.Redis,
                                          policy: str) -> None:  # fmt: skip
    """Every allkeys-* and volatile-* policy may evict lockout keys (all have a TTL)."""
    link = open_link(RedisSettings(url=redis_url))
    redis_client.config_set("maxmemory-policy", policy)
    try:
        assert policy in (eviction_problem(link, RedisSettings()) or "")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
        link.close()


@pytest.mark.usefixtures("evicting")
def test_allow_eviction_starts_anyway(redis_url: str, tmp_path: Path) -> None:
    """[redis] allow_eviction = true is the explicit way to start on such a Redis."""
    services = build(settings_for(redis_url, tmp_path, allow_eviction=True))
    services.close()


def test_noeviction_starts(redis_url: str, redis_client: redis.Redis) -> None:
    """noeviction (Redis's default) passes the check."""
    link = open_link(RedisSettings(url=redis_url))
    assert eviction_problem(link, RedisSettings()) is None
    link.close()


def test_an_unreachable_redis_does_not_stop_the_start(caplog: pytest.LogCaptureFixture) -> None:
    """Redis down while the service starts: a warning, not a refusal (readiness repeats it)."""
    link = open_link(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))
    check_eviction_policy(link, RedisSettings())
    assert "maxmemory-policy not checked" in caplog.text
    with pytest.raises(DependencyError):
        eviction_problem(link, RedisSettings())
    link.close()


def test_readiness_reports_an_evicting_policy(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A policy changed to an evicting one while running makes /readyz answer 503."""
    services = build(settings_for(redis_url, tmp_path))
    client = create_app(services.settings, services).test_client()
    try:
        assert client.get("/readyz").status_code == 200
        redis_client.config_set("maxmemory-policy", "volatile-lru")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"] == "unsafe maxmemory-policy"
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
        services.close()
