"""A SQLite PIN store runs in WAL mode: a writer holding the database (an import's chunk,
a prune) does not stop the webhooks' PIN checks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.store.hashing import PinHasher
from ivr.store.pins import Account, PinStore
from tests.store.test_pins import PEPPER, PIN, SEED

HASHER = PinHasher({"k1": PEPPER}, "k1")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "pins.sqlite3"


@pytest.fixture
def store(database: Path) -> Iterator[PinStore]:
    store = PinStore.from_url(f"sqlite:///{database}", HASHER, timeout_s=0.3)
    store.upsert_many(SEED)
    yield store
    store.close()


def journal_mode(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("PRAGMA journal_mode")).scalar_one())


def test_both_engines_of_a_file_store_run_in_wal_mode(store: PinStore) -> None:
    """The write engine and the webhooks' read engine both use the write-ahead log."""
    assert store.reads is not store.engine
    assert journal_mode(store.engine) == "wal"
    assert journal_mode(store.reads) == "wal"


def test_a_writer_holding_the_database_does_not_stop_pin_checks(
    store: PinStore, database: Path
) -> None:
    """While another process's transaction holds SQLite's exclusive lock with uncommitted
    changes, PIN checks and phone lookups answer at once from the last commit."""
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE accounts SET name = 'Umbenannt'")
        writer.execute("DELETE FROM account_phones")
        started = time.monotonic()
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        assert store.accounts_for_phone(SEED[0].phones[0]) == ["1001"]  # type: ignore[index]
        assert time.monotonic() - started < 0.2
    finally:
        writer.execute("ROLLBACK")
        writer.close()
