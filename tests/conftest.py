"""Shared fixtures: a real Redis for the run, a clean database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import running_redis

POSTGRES_URL = os.environ.get(
    "IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the run's Redis: $REDIS_URL if given, else a private redis-server."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    with running_redis() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database, closed after the test."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
