"""Shared fixtures: a real Redis for the run, the app on a fresh SQLite store per test,
and ``phone`` to place calls that are signed exactly like Twilio's."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ivr import config, create_app
from ivr.config import RedisSettings, Settings
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from tests.fleet.cluster import ClusterHarness
from tests.measured import pytest_terminal_summary  # noqa: F401 - the summary hook
from tests.redis_server import running_redis
from tests.twilio_phone import PUBLIC_BASE, Call

if TYPE_CHECKING:
    from ivr.services import Services

POSTGRES_URL = os.environ.get(
    "IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PEPPER = "test-pepper-0123456789abcdef-0123"
API_TOKEN = "test-api-token-0123456789abcdef"
WORKFLOW_SID = "WW" + "0" * 32

# customer number, name, phones, PIN
ACCOUNTS = (
    ("200001", "Anna Alpha", ("+4930111111",), "123456"),
    ("200002", "Bernd Beta", ("+4930222222",), "654321"),
    ("200003", "Clara Gamma", ("+4930222222",), "111222"),
)
SINGLE_OWNER = "+4930111111"
SHARED_NUMBER = "+4930222222"
UNKNOWN_NUMBER = "+4930999999"


def make_settings(
    redis_url: str, db_url: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Settings:
    """Validated test settings; ``overrides`` replace keys per section."""
    raw: dict[str, dict[str, Any]] = {
        "server": {"public_base_url": PUBLIC_BASE},
        "twilio": {"auth_token": AUTH_TOKEN},
        "redis": {"url": redis_url},
        "pin_store": {"url": db_url, "pepper": PEPPER},
        "routing": {"mode": "enqueue", "workflow_sid": WORKFLOW_SID},
        "api": {"token": API_TOKEN},
    }
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    settings = config.from_mapping(raw, env={})
    config.validate(settings)
    return settings


def seed(services: Services) -> None:
    """Load the test accounts."""
    from ivr.store.accounts_csv import ImportRow

    rows = [ImportRow(i, cn, n, p, pin) for i, (cn, n, p, pin) in enumerate(ACCOUNTS, 2)]
    services.pins.upsert_many(rows)


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterHarness]:
    """A 6-node Redis Cluster (3 primaries, 3 replicas) for the run, started on first use."""
    with ClusterHarness() as cluster:
        yield cluster


@pytest.fixture
def cluster(redis_cluster: ClusterHarness) -> ClusterHarness:
    """The run's Redis Cluster, every primary flushed (and healthy: a test that failed a
    node over must have let it rejoin)."""
    redis_cluster.wait_healthy(30)
    for primary in redis_cluster.primaries():
        primary.call("FLUSHALL")
    return redis_cluster


@pytest.fixture
def link(redis_url: str, redis_client: redis.Redis) -> Iterator[Link]:
    """The product's own connection to the run's (flushed) Redis, as the app opens it."""
    opened = open_link(RedisSettings(url=redis_url))
    yield opened
    opened.close()


@pytest.fixture
def keys() -> KeyLayout:
    """The key names under the default prefix."""
    return KeyLayout("ivr")


@pytest.fixture
def overrides() -> dict[str, dict[str, Any]]:
    """Per-test settings overrides; parametrize or override this fixture to change them."""
    return {}


@pytest.fixture
def settings(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path, overrides: dict[str, Any]
) -> Settings:
    """Test settings on the run's Redis (flushed) and a fresh SQLite file."""
    return make_settings(redis_url, f"sqlite:///{tmp_path / 'pins.sqlite3'}", overrides)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The app's services with the test accounts loaded."""
    from ivr.services import build

    built = build(settings)
    seed(built)
    yield built
    built.close()


@pytest.fixture
def app(settings: Settings, services: Services) -> Flask:
    """The app under test."""
    return create_app(settings, services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    """A runner for the ``ivr`` command."""
    return CliRunner()


@pytest.fixture
def phone(client: FlaskClient) -> Callable[..., Call]:
    """Factory for calls placed like Twilio places them: ``phone(caller="+49...")``."""

    def place(caller: str = SINGLE_OWNER, **kwargs: Any) -> Call:
        return Call(client=client, auth_token=AUTH_TOKEN, caller=caller, **kwargs)

    return place
