"""PinStore on SQLite; the behaviour class is reused against PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.exceptions import AccountNotFound, DependencyError
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_queries import RawSelect, fetch_all
from ivr.store.pins import (
    _BY_PHONE,
    _CREDENTIALS,
    Account,
    ImportReport,
    PinStore,
    accounts,
    create_engine,
    metadata,
)
from tests.redis_server import free_port
from tests.sqlite_lock import locked_file

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


def checked_out(engine: sa.Engine) -> int:
    """Connections of ``engine``'s pool that are lent out right now."""
    pool = engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    return pool.checkedout()


def count_connects(engine: sa.Engine) -> list[object]:
    """A list that grows by one whenever ``engine``'s pool opens a new DBAPI connection."""
    opened: list[object] = []
    sa.event.listen(engine, "connect", lambda dbapi_conn, _record: opened.append(dbapi_conn))
    return opened


def keep_lent_connections(engine: sa.Engine) -> list[object]:
    """Keep every connection proxy the pool lends out alive, so that only an explicit
    close (not garbage collection of a forgotten proxy) can return it to the pool."""
    lent: list[object] = []
    sa.event.listen(engine, "checkout", lambda _dbapi, _record, proxy: lent.append(proxy))
    return lent


class PinStoreBehaviour:
    """Store behaviour every backend must show; subclasses provide ``db_url`` and locks."""

    def exclusive_lock(self, db_url: str) -> AbstractContextManager[None]:
        """Lock the tables against readers from another session; fail if that must wait."""
        raise NotImplementedError

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

    def test_check_pin_answers_like_the_sqlalchemy_reading(
        self, store: PinStore, open_store: StoreFactory
    ) -> None:
        """Before and after pepper rotation, check_pin answers as SQLAlchemy's reading does."""
        with store.engine.begin() as conn:  # an account without a PIN
            conn.execute(
                accounts.update()
                .where(accounts.c.customer_number == "1003")
                .values(pin_key_id=None, pin_hash=None)
            )
        hashers = [
            PinHasher({"k1": PEPPER}, "k1"),
            PinHasher({"k1": PEPPER, "k2": NEW_PEPPER}, "k2"),  # rehashes 1001 and 1002
            PinHasher({"k2": NEW_PEPPER}, "k2"),
        ]
        answers = []
        for hasher in hashers:
            opened = open_store(hasher)
            for number in ("1001", "1002", "1003", "9999"):
                for pin in (PIN, "111111", "000000"):
                    expected = self.reference_check(opened, hasher, number, pin)
                    assert opened.check_pin(number, pin) == expected
                    answers.append(expected)
        assert answers.count(None) == len(answers) - 6  # every hasher verifies 1001 and 1002

    def test_raw_reads_return_the_rows_sqlalchemy_returns(self, store: PinStore) -> None:
        """The precompiled raw reads return exactly the rows SQLAlchemy Core returns."""
        store.upsert_many([row("1004", "Dritte", (SHARED,))])
        by_phone = RawSelect(store.engine, _BY_PHONE)
        credentials = RawSelect(store.engine, _CREDENTIALS)
        with store.engine.connect() as conn:
            for phone in (ERIKA, SHARED, "+4989111111"):
                expected = [tuple(r) for r in conn.execute(_BY_PHONE, {"phone": phone})]
                assert by_phone.rows({"phone": phone}) == expected
            for number in ("1001", "1004", "9999"):
                expected = [tuple(r) for r in conn.execute(_CREDENTIALS, {"number": number})]
                assert credentials.rows({"number": number}) == expected
        assert store.accounts_for_phone(SHARED) == ["1001", "1002"]

    def test_hot_reads_skip_sqlalchemy_execution(
        self, store: PinStore, open_store: StoreFactory
    ) -> None:
        """check_pin and the caller lookup execute nothing through SQLAlchemy; a rehash does."""
        rotated = open_store(PinHasher({"k1": PEPPER, "k2": NEW_PEPPER}, "k2"))
        executed: list[str] = []
        for engine in (store.engine, rotated.engine):
            sa.event.listen(engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
        assert store.accounts_for_phone(SHARED) == ["1001", "1002"]
        assert store.check_pin("1001", PIN) is not None
        assert store.check_pin("1001", "000000") is None
        assert store.check_pin("9999", PIN) is None
        assert executed == []
        assert rotated.check_pin("1001", PIN) is not None
        assert [sql.split()[0] for sql in executed] == ["UPDATE"]

    def test_reads_reuse_the_pooled_connection_and_hold_no_lock(
        self, store: PinStore, db_url: str
    ) -> None:
        """Fast reads return their pooled connection each time and leave no lock behind."""
        connects = count_connects(store.engine)
        keep_lent_connections(store.engine)
        for _ in range(20):
            store.check_pin("1001", PIN)
            store.check_pin("9999", PIN)
            store.accounts_for_phone(SHARED)
            assert checked_out(store.engine) == 0
        assert connects == []
        with self.exclusive_lock(db_url):
            pass

    def test_lost_tables_raise_dependency_error_and_leak_nothing(self, store: PinStore) -> None:
        """Without its tables the fast reads raise DependencyError and return the connection."""
        metadata.drop_all(store.engine)
        keep_lent_connections(store.engine)
        calls: list[Callable[[], object]] = [
            lambda: store.check_pin("1001", PIN),
            lambda: store.accounts_for_phone(ERIKA),
        ]
        for call in calls:
            with pytest.raises(DependencyError, match="PIN store failed") as info:
                call()
            assert PIN not in str(info.value) and "\n" not in str(info.value)
            assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
            assert checked_out(store.engine) == 0
        store.create_tables()
        store.upsert_many(SEED)
        assert store.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")

    def test_locked_store_fails_fast_and_recovers(self, store: PinStore, db_url: str) -> None:
        """A read blocked by another session's lock times out as DependencyError, then works."""
        quick = PinStore.from_url(db_url, PinHasher({"k1": PEPPER}, "k1"), timeout_s=0.3)
        keep_lent_connections(quick.engine)
        calls: list[Callable[[], object]] = [
            lambda: quick.check_pin("1001", PIN),
            lambda: quick.accounts_for_phone(ERIKA),
        ]
        try:
            with self.exclusive_lock(db_url):
                for call in calls:
                    started = time.monotonic()
                    with pytest.raises(DependencyError, match="PIN store failed"):
                        call()
                    assert time.monotonic() - started < 3
                    assert checked_out(quick.engine) == 0
            assert quick.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
            assert quick.accounts_for_phone(ERIKA) == ["1001"]
        finally:
            quick.close()

    @staticmethod
    def reference_check(store: PinStore, hasher: PinHasher, number: str, pin: str) -> object:
        """check_pin's answer computed through SQLAlchemy Core, as the store did before."""
        with store.engine.connect() as conn:
            found = conn.execute(_CREDENTIALS, {"number": number}).one_or_none()
        if found is None or found.pin_key_id is None or found.pin_hash is None:
            return None
        if not hasher.matches(number, pin, found.pin_key_id, found.pin_hash):
            return None
        return Account(number, found.name)

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

    @contextmanager
    def exclusive_lock(self, db_url: str) -> Iterator[None]:
        hold = locked_file(Path(str(sa.make_url(db_url).database)))
        try:
            yield
        finally:
            hold.release()


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
    assert checked_out(engine) == 0
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


def test_raw_select_refuses_what_it_cannot_run_plainly(tmp_path: Path) -> None:
    """RawSelect rejects statements needing type conversion or late rendering, and bad params."""
    engine = create_engine(f"sqlite:///{tmp_path / 'pins.sqlite3'}", 1.0)
    try:
        with pytest.raises(ValueError, match="created_at"):
            RawSelect(engine, sa.select(accounts.c.created_at))  # SQLite stores it as text
        expanding = sa.bindparam("ids", type_=sa.Integer, expanding=True)
        with pytest.raises(ValueError, match="execution time"):
            RawSelect(engine, sa.select(accounts.c.name).where(accounts.c.id.in_(expanding)))
        with pytest.raises(TypeError, match="number"):
            RawSelect(engine, _CREDENTIALS).rows({"phone": ERIKA})
    finally:
        engine.dispose()


class Exploding(Sequence[Any]):
    """Query parameters whose first access raises ``error`` inside the driver."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: Any) -> Any:
        raise self.error


def test_other_errors_return_or_invalidate_the_connection(tmp_path: Path) -> None:
    """A non-driver error returns the connection as is; an interrupt replaces it."""
    store = PinStore.from_url(f"sqlite:///{tmp_path / 'pins.sqlite3'}", HASHER)
    try:
        store.check_pin("1001", PIN)  # the read pool holds its connection
        connects = count_connects(store.reads)
        keep_lent_connections(store.reads)
        sql = RawSelect(store.reads, _CREDENTIALS).sql
        with pytest.raises(RuntimeError, match="boom"):
            fetch_all(store.reads, sql, Exploding(RuntimeError("boom")))
        assert checked_out(store.reads) == 0
        assert store.check_pin("1001", PIN) is None and connects == []
        with pytest.raises(KeyboardInterrupt):
            fetch_all(store.reads, sql, Exploding(KeyboardInterrupt()))
        assert checked_out(store.reads) == 0
        assert store.check_pin("1001", PIN) is None and len(connects) == 1
    finally:
        store.close()
