"""PinStore against the PostgreSQL server: the same behaviour as on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from ivr.store.pins import create_engine
from tests.conftest import POSTGRES_URL
from tests.store.test_pins import PinStoreBehaviour

pytestmark = pytest.mark.postgres


def _libpq_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def server() -> str:
    """POSTGRES_URL when the server answers; otherwise the module is skipped, saying why."""
    try:
        psycopg.connect(_libpq_url(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}".splitlines()[0])
    return POSTGRES_URL


@pytest.fixture
def schema_url(server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"ivr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in server else "?"
    yield f"{server}{joiner}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(_libpq_url(server), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class TestPinStorePostgres(PinStoreBehaviour):
    """The shared store behaviour on PostgreSQL, each test in its own schema."""

    @pytest.fixture
    def db_url(self, schema_url: str) -> str:
        return schema_url


def test_engine_sets_timeouts_and_keeps_url_options(schema_url: str) -> None:
    """The engine adds a statement timeout without dropping options given in the URL."""
    engine = create_engine(schema_url, timeout_s=0.75)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "750ms"
            path = conn.execute(sa.text("SHOW search_path")).scalar_one()
            assert path.startswith("ivr_test_")
    finally:
        engine.dispose()


def test_slow_statement_is_cancelled(schema_url: str) -> None:
    """A statement running past the timeout is cancelled by the server."""
    engine = create_engine(schema_url, timeout_s=0.2)
    try:
        with (
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            engine.connect() as conn,
        ):
            conn.execute(sa.text("SELECT pg_sleep(2)"))
    finally:
        engine.dispose()
