"""PinStore on SQLite; the behaviour class is reused against PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.exceptions import AccountNotFound, DependencyError
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pins import Account, ImportReport, PinStore, accounts, create_engine
from tests.redis_server import free_port

PEPPER = b"test-pepper-0123456789"
NEW_PEPPER = b"rotated-pepper-0123456789"
PIN = "482913"
ERIKA = "+4915112345678"
SHARED = "+4930123456"

StoreFactory = Callable[[PinHasher], PinStore]


def row(number: str, name: str, phones: tuple[str, ...] = (), pin: str = PIN) -> ImportRow:
    return ImportRow(line=2, customer_number=number, name=name, phones=phones, pin=pin)


SEED = [
    row("1001", "Erika Mustermann", (ERIKA, SHARED)),
    row("1002", "Max Mustermann", (SHARED,), pin="111111"),
    row("1003", "Anna Alleinig"),
]


class CountingHasher(PinHasher):
    """A PinHasher that counts HMAC comparisons, to see the work check_pin does."""

    calls = 0

    def matches(self, customer_number: str, pin: str, key_id: str, digest: str) -> bool:
        self.calls += 1
        return super().matches(customer_number, pin, key_id, digest)


class PinStoreBehaviour:
    """Store behaviour every backend must show; subclasses provide ``db_url``."""

    @pytest.fixture
    def open_store(self, db_url: str) -> Iterator[StoreFactory]:
        opened: list[PinStore] = []

        def factory(hasher: PinHasher) -> PinStore:
            opened.append(PinStore.from_url(db_url, hasher, timeout_s=2))
            return opened[-1]

        yield factory
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: StoreFactory) -> PinStore:
        store = open_store(PinHasher({"k1": PEPPER}, "k1"))
        assert store.upsert_many(SEED) == ImportReport(created=3, updated=0)
        return store

    def test_ping_and_count(self, store: PinStore) -> None:
        """A reachable store answers ping and counts its accounts."""
        store.ping()
        assert store.count() == 3

    def test_phone_lookup(self, store: PinStore) -> None:
        """A number owned once maps to that account, a shared one to both, others to none."""
        assert store.accounts_for_phone(ERIKA) == ["1001"]
        assert store.accounts_for_phone(SHARED) == ["1001", "1002"]
        assert store.accounts_for_phone("+4989111111") == []

    def test_phone_lookup_stops_at_two(self, store: PinStore) -> None:
        """Lookup returns at most two owners; that is enough to know it is shared."""
        store.upsert_many([row("1004", "Dritte", (SHARED,))])
        assert len(store.accounts_for_phone(SHARED)) == 2

    def test_check_pin(self, store: PinStore) -> None:
        """The right PIN yields the account, a wrong one or an unknown account None."""
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        assert store.check_pin("1001", "111111") is None
        assert store.check_pin("1002", "111111") == Account("1002", "Max Mustermann")
        assert store.check_pin("9999", PIN) is None

    def test_unknown_account_does_the_same_work(self, open_store: StoreFactory) -> None:
        """An unknown account costs one HMAC comparison, exactly like a known one."""
        hasher = CountingHasher({"k1": PEPPER}, "k1")
        store = open_store(hasher)
        store.upsert_many(SEED)
        for number in ("1001", "9999"):
            hasher.calls = 0
            store.check_pin(number, "000000")
            assert hasher.calls == 1

    def test_rehash_on_old_key_id(self, store: PinStore, open_store: StoreFactory) -> None:
        """After rotation a right PIN still verifies and is rehashed under the new pepper."""
        rotated = open_store(PinHasher({"k1": PEPPER, "k2": NEW_PEPPER}, "k2"))
        assert rotated.check_pin("1002", "000000") is None
        assert self.key_ids(rotated) == {"1001": "k1", "1002": "k1", "1003": "k1"}
        assert rotated.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        assert self.key_ids(rotated)["1001"] == "k2"
        assert rotated.check_pin("1001", PIN) is not None
        only_new = open_store(PinHasher({"k2": NEW_PEPPER}, "k2"))
        assert only_new.check_pin("1001", PIN) is not None
        assert only_new.check_pin("1002", "111111") is None  # its k1 pepper is gone

    def test_get(self, store: PinStore) -> None:
        """get returns name and number of an existing account, None otherwise."""
        assert store.get("1003") == Account("1003", "Anna Alleinig")
        assert store.get("9999") is None

    def test_delete(self, store: PinStore) -> None:
        """Deleting an account removes it and its phone numbers; a second delete fails."""
        store.delete("1001")
        assert store.get("1001") is None
        assert store.accounts_for_phone(ERIKA) == []
        assert store.accounts_for_phone(SHARED) == ["1002"]
        assert store.count() == 2
        with pytest.raises(AccountNotFound):
            store.delete("1001")

    def test_upsert_updates_name_pin_and_phones(self, store: PinStore) -> None:
        """Re-importing an account replaces its name, PIN and phone numbers."""
        report = store.upsert_many(
            [row("1001", "Erika Neu", ("+4917612345678",), "222222"), row("1005", "Neu")]
        )
        assert report == ImportReport(created=1, updated=1)
        assert store.check_pin("1001", PIN) is None
        assert store.check_pin("1001", "222222") == Account("1001", "Erika Neu")
        assert store.accounts_for_phone(ERIKA) == []
        assert store.accounts_for_phone(SHARED) == ["1002"]
        assert store.accounts_for_phone("+4917612345678") == ["1001"]
        assert store.count() == 4

    def test_upsert_is_all_or_nothing(self, store: PinStore) -> None:
        """When one row fails to write, no row of the batch is written."""
        broken = row("1007", "Kaputt", (ERIKA, ERIKA))  # same phone twice: key violation
        with pytest.raises(DependencyError) as info:
            store.upsert_many([row("1006", "Vorher"), row("1001", "Geändert"), broken])
        assert PIN not in str(info.value)
        assert store.count() == 3
        assert store.get("1006") is None
        assert store.get("1001") == Account("1001", "Erika Mustermann")

    def test_tables_survive_reopening(self, store: PinStore, open_store: StoreFactory) -> None:
        """Opening an existing database keeps its accounts (tables are created only once)."""
        again = open_store(PinHasher({"k1": PEPPER}, "k1"))
        assert again.count() == 3

    def test_no_pin_in_the_database(self, store: PinStore) -> None:
        """The database holds digests only, never the PIN itself."""
        dump = repr(self.rows(store))
        assert PIN not in dump and "111111" not in dump

    @staticmethod
    def rows(store: PinStore) -> list[tuple[object, ...]]:
        with store._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(accounts))]

    @staticmethod
    def key_ids(store: PinStore) -> dict[str, str]:
        with store._engine.connect() as conn:
            result = conn.execute(sa.select(accounts.c.customer_number, accounts.c.pin_key_id))
            return {number: key_id for number, key_id in result}


class TestPinStoreSQLite(PinStoreBehaviour):
    """The behaviour on a SQLite file."""

    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'pins.sqlite3'}"


HASHER = PinHasher({"k1": PEPPER}, "k1")


def test_sqlite_in_missing_directory_fails_fast(tmp_path: Path) -> None:
    """Opening a SQLite file in a directory that does not exist is a DependencyError."""
    with pytest.raises(DependencyError, match="PIN store"):
        PinStore.from_url(f"sqlite:///{tmp_path / 'missing' / 'pins.db'}", HASHER)


def test_every_read_raises_dependency_error_without_the_pin(tmp_path: Path) -> None:
    """With the database gone, every read raises DependencyError and never names the PIN."""
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'pins.db'}", 0.5)
    store = PinStore(engine, HASHER)
    calls: list[Callable[[], object]] = [
        store.ping,
        lambda: store.accounts_for_phone(ERIKA),
        lambda: store.check_pin("1001", PIN),
        lambda: store.get("1001"),
        store.count,
    ]
    for call in calls:
        with pytest.raises(DependencyError) as info:
            call()
        assert PIN not in str(info.value)
        assert "\n" not in str(info.value)
    store.close()


def test_closed_postgres_port_fails_fast() -> None:
    """A PostgreSQL URL nobody listens on fails within the timeout as DependencyError."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    started = time.monotonic()
    with pytest.raises(DependencyError, match="PIN store"):
        PinStore.from_url(url, HASHER, timeout_s=1)
    assert time.monotonic() - started < 5


def test_invalid_url_is_a_dependency_error() -> None:
    """A URL SQLAlchemy cannot parse is reported, not raised as a library error."""
    with pytest.raises(DependencyError, match="url"):
        PinStore.from_url("nonsense://", HASHER)
