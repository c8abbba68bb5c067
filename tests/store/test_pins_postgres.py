"""PinStore against the PostgreSQL server: the same behaviour as on SQLite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from ivr.exceptions import DependencyError
from ivr.store.hashing import PinHasher
from ivr.store.pins import Account, PinStore, create_engine
from tests.conftest import POSTGRES_URL
from tests.store.test_account_import_changes import ImportChangesBehaviour
from tests.store.test_pins import (
    PEPPER,
    PIN,
    SEED,
    PinStoreBehaviour,
    checked_out,
    keep_lent_connections,
)

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

    @contextmanager
    def exclusive_lock(self, db_url: str) -> Iterator[None]:
        with psycopg.connect(_libpq_url(db_url)) as conn:
            # NOWAIT: fails at once if any session (e.g. one idle in a transaction) holds
            # even the share lock a SELECT takes.
            conn.execute("LOCK TABLE accounts, account_phones IN ACCESS EXCLUSIVE MODE NOWAIT")
            yield
            conn.rollback()


class TestImportChangesPostgres(ImportChangesBehaviour):
    """Imports' change detection, dry runs and chunked deletes on PostgreSQL."""

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


def _backend_pid(engine: sa.Engine) -> int:
    """Server process id of the one connection pooled by ``engine``."""
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    assert isinstance(pid, int)
    return pid


def _terminate(server: str, pid: int) -> None:
    """Have the server kill backend ``pid`` and wait until it is gone."""
    with psycopg.connect(_libpq_url(server), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "backend did not exit"
            time.sleep(0.01)


def test_connection_killed_while_pooled_is_replaced(schema_url: str, server: str) -> None:
    """The write engine's pre-ping replaces a pooled connection the server killed, so a
    read on it (the account lookup) succeeds. Hot reads use their own engine (below)."""
    store = PinStore.from_url(schema_url, PinHasher({"k1": PEPPER}, "k1"))
    try:
        store.upsert_many(SEED)
        _terminate(server, _backend_pid(store.engine))
        keep_lent_connections(store.engine)
        assert store.get("1001") == Account("1001", "Erika Mustermann")
        assert checked_out(store.engine) == 0
    finally:
        store.close()


def test_dead_pooled_connection_costs_one_retry_not_a_ping(schema_url: str, server: str) -> None:
    """The read engine pings nothing: a connection the server killed is discarded and the
    read retried once on a fresh one, so the caller never notices."""
    store = PinStore.from_url(schema_url, PinHasher({"k1": PEPPER}, "k1"))
    reads = store._reads  # noqa: SLF001 - the engine under test
    try:
        store.upsert_many(SEED)
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        _terminate(server, _backend_pid(reads))
        keep_lent_connections(reads)
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        assert checked_out(reads) == 0
    finally:
        store.close()


def test_read_engine_runs_autocommit_without_pre_ping(schema_url: str) -> None:
    """Hot reads open no transaction (no BEGIN/ROLLBACK round trips) and skip the pre-ping."""
    store = PinStore.from_url(schema_url, PinHasher({"k1": PEPPER}, "k1"))
    reads = store._reads  # noqa: SLF001 - the engine under test
    try:
        assert reads is not store.engine
        assert reads.pool._pre_ping is False  # noqa: SLF001
        store.upsert_many(SEED)
        store.check_pin("1001", PIN)
        raw = reads.raw_connection()
        try:
            assert raw.dbapi_connection is not None
            assert raw.dbapi_connection.autocommit is True
        finally:
            raw.close()
    finally:
        store.close()


def test_server_gone_for_good_is_a_dependency_error(schema_url: str, server: str) -> None:
    """When the retry finds a dead connection too, the read is one DependencyError."""
    engine = sa.create_engine(schema_url, pool_pre_ping=False, hide_parameters=True)
    store = PinStore(engine, PinHasher({"k1": PEPPER}, "k1"))
    try:
        store.create_tables()
        store.upsert_many(SEED)
        with engine.connect() as first, engine.connect() as second:  # two pooled connections
            pids = [
                conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                for conn in (first, second)
            ]
        for pid in pids:
            _terminate(server, pid)
        keep_lent_connections(engine)
        with pytest.raises(DependencyError, match="PIN store failed") as info:
            store.check_pin("1001", PIN)
        assert PIN not in str(info.value) and "\n" not in str(info.value)
        assert checked_out(engine) == 0
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
    finally:
        store.close()
