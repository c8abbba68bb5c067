"""AuditStore on SQLite; the behaviour class is reused against PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.config import PinStoreSettings
from ivr.exceptions import ConfigError, DependencyError
from ivr.flow.state import Verdict
from ivr.store.audit import UNLOCKED, AuditKind, AuditStore, audit_events
from ivr.store.hashing import PinHasher
from ivr.store.pins import PinStore, create_engine
from tests.racing import race
from tests.redis_server import free_port

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
CALL = "CA" + "a" * 32


class AuditStoreBehaviour:
    """What every backend must do; subclasses provide ``db_url``."""

    @pytest.fixture
    def store(self, db_url: str) -> Iterator[AuditStore]:
        store = AuditStore(create_engine(db_url, 2.0))
        store.create_tables()
        yield store
        store.close()

    def test_attempt_round_trip(self, store: AuditStore) -> None:
        """A recorded attempt comes back with its time, call, account, caller and outcome."""
        store.record_attempt(CALL, "200001", "+4930111111", Verdict.WRONG, T0, attempt_id="a1")
        (record,) = store.export(T0 - timedelta(days=1))
        assert record.at == T0
        assert record.kind is AuditKind.ATTEMPT
        assert (record.call_sid, record.customer_number, record.caller) == (
            CALL,
            "200001",
            "+4930111111",
        )
        assert record.outcome == "wrong" and record.actor is None

    def test_same_attempt_twice_is_one_row(self, store: AuditStore) -> None:
        """Recording the same attempt id again (a retried job) does not add a row."""
        for _ in range(3):
            store.record_attempt(CALL, "200001", None, "locked", T0, attempt_id="same")
        assert store.count() == 1

    def test_derived_key_dedupes_identical_attempts(self, store: AuditStore) -> None:
        """Without an attempt id, the same call, account, outcome and time are one attempt."""
        store.record_attempt(CALL, "200001", None, "wrong", T0)
        store.record_attempt(CALL, "200001", None, "wrong", T0)
        store.record_attempt(CALL, "200001", None, "wrong", T0 + timedelta(seconds=9))
        assert store.count() == 2

    def test_unknown_outcome_is_refused(self, store: AuditStore) -> None:
        """Only Verdict values are outcomes of an attempt."""
        with pytest.raises(ValueError):
            store.record_attempt(CALL, "200001", None, "123456", T0)
        assert store.count() == 0

    def test_unlock_rows(self, store: AuditStore) -> None:
        """An unlock is recorded with actor and source, and exported in time order."""
        store.record_attempt(CALL, "200001", None, "locked", T0, attempt_id="x")
        store.record_unlock("200001", "alice", "console", at=T0 + timedelta(minutes=5))
        records = list(store.export(T0))
        assert [r.kind for r in records] == [AuditKind.ATTEMPT, AuditKind.UNLOCK]
        unlock = records[1]
        assert (unlock.outcome, unlock.actor, unlock.source) == (UNLOCKED, "alice", "console")
        assert unlock.call_sid is None

    def test_unlock_defaults_to_now(self, store: AuditStore) -> None:
        """record_unlock without a time records the current time."""
        before = datetime.now(UTC) - timedelta(seconds=1)
        store.record_unlock("200001", "ops", "cli")
        (record,) = store.export(before)
        assert record.at >= before

    def test_export_since_filters_and_orders(self, store: AuditStore) -> None:
        """Only rows at or after ``since`` are exported, oldest first."""
        for i, minutes in enumerate((30, 0, 10, -10)):
            store.record_attempt(
                CALL, "200001", None, "wrong", T0 + timedelta(minutes=minutes), attempt_id=str(i)
            )
        times = [r.at for r in store.export(T0)]
        assert times == [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)]

    def test_times_are_stored_in_utc(self, store: AuditStore) -> None:
        """A time with another offset, or a naive one (UTC), compares correctly."""
        berlin = timezone(timedelta(hours=1))
        store.record_attempt(CALL, "1", None, "wrong", T0.astimezone(berlin), attempt_id="b")
        assert [r.at for r in store.export(T0.replace(tzinfo=None))] == [T0]
        assert list(store.export(T0 + timedelta(seconds=1))) == []

    def test_purge_removes_only_older_rows(self, store: AuditStore) -> None:
        """purge deletes rows before the cut-off and reports how many."""
        store.record_attempt(CALL, "1", None, "wrong", T0 - timedelta(days=100), attempt_id="o")
        store.record_unlock("1", "bob", "cli", at=T0 - timedelta(days=91))
        store.record_attempt(CALL, "1", None, "verified", T0, attempt_id="n")
        assert store.purge(T0 - timedelta(days=90)) == 2
        assert [r.outcome for r in store.export(T0 - timedelta(days=365))] == ["verified"]
        assert store.purge(T0 - timedelta(days=90)) == 0

    def test_no_column_can_hold_a_pin(self, store: AuditStore) -> None:
        """The table has no column for digits entered: only who, when and the outcome."""
        names = {c.name for c in audit_events.columns}
        assert names == {
            "id", "event_key", "kind", "at", "call_sid", "customer_number", "caller",
            "outcome", "actor", "source",
        }  # fmt: skip

    def test_create_tables_is_repeatable(self, store: AuditStore) -> None:
        """Creating the tables again keeps the rows."""
        store.record_unlock("1", "bob", "cli")
        store.create_tables()
        assert store.count() == 1


class TestAuditStoreSqlite(AuditStoreBehaviour):
    """The shared behaviour on a SQLite file."""

    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/audit.sqlite3"


def test_database_down_is_dependency_error() -> None:
    """An unreachable database raises DependencyError with one line naming the audit store."""
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    store = AuditStore(create_engine(url, 0.5))
    with pytest.raises(DependencyError) as caught:
        store.record_attempt(CALL, "1", None, "wrong", T0)
    assert str(caught.value).startswith("audit store failed")
    assert "\n" not in str(caught.value)


def test_shares_the_pin_store_database(tmp_path: Path) -> None:
    """The audit table lives beside the PIN store's tables in one database."""
    from ivr.store.hashing import PinHasher
    from ivr.store.pins import PinStore

    url = f"sqlite:///{tmp_path}/pins.sqlite3"
    pins = PinStore.from_url(url, PinHasher({"k1": b"pepper-0123456789abcdef"}, "k1"))
    store = AuditStore(pins.engine)
    store.create_tables()
    assert {"accounts", "account_phones", "audit_events"} <= set(
        sa.inspect(pins.engine).get_table_names()
    )
    pins.close()


def test_from_url_opens_and_creates_the_table(tmp_path: Path) -> None:
    """from_url gives a store whose table exists, on an engine of its own."""
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.sqlite3'}", 2.0)
    try:
        assert store.count() == 0
    finally:
        store.close()


def test_from_url_tells_a_bad_url_from_a_dead_database() -> None:
    """A URL naming no database is a ConfigError; an unreachable one a DependencyError."""
    with pytest.raises(ConfigError, match=r"\[pin_store\] url"):
        AuditStore.from_url("no-such-scheme://x", 0.5)
    with pytest.raises(DependencyError):
        AuditStore.from_url(f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x", 0.5)


def test_workers_starting_together_all_create_the_tables(tmp_path: Path) -> None:
    """Gunicorn workers booting at once on a fresh database must not fail on a table
    another one just created (seen: "table audit_events already exists")."""
    for round_no in range(5):
        url = f"sqlite:///{tmp_path / f'fresh-{round_no}.sqlite3'}"
        hasher = PinHasher.from_settings(PinStoreSettings(pepper="p" * 32))

        def boot(url: str = url, hasher: PinHasher = hasher) -> bool:
            pins = PinStore.from_url(url, hasher, 5.0)
            try:
                AuditStore.on(pins.engine)
            finally:
                pins.close()
            return True

        assert race([boot] * 8) == [True] * 8
