"""Imports write only what changes, a dry run counts the same without writing, and many
accounts are deleted in chunks, each cleaned up first (SQLite; reused for PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.exceptions import DependencyError
from ivr.store.account_import import CHUNK_ROWS, ImportReport
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts
from ivr.store.pins import Account, PinStore
from tests.store.test_pins import ERIKA, PEPPER, PIN, SEED, SHARED, row

HASHER = PinHasher({"k1": PEPPER}, "k1")
BULK = 2_500


def snapshot(store: PinStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every stored column of every account and phone, in a fixed order."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(accounts).order_by(accounts.c.id)).all()
        phones = conn.execute(
            sa.select(account_phones).order_by(account_phones.c.account_id, account_phones.c.phone)
        ).all()
    return [tuple(r) for r in rows], [tuple(p) for p in phones]


def bulk(store: PinStore) -> list[str]:
    """BULK more accounts, each with a phone of its own; their customer numbers."""
    rows = [row(str(500_000 + i), f"Kunde {i}", (f"+49151{i:08d}",)) for i in range(BULK)]
    store.upsert_many(rows)
    return [r.customer_number for r in rows]


def commits(engine: sa.Engine) -> list[object]:
    """A list that grows by one with every transaction ``engine`` commits."""
    seen: list[object] = []
    sa.event.listen(engine, "commit", lambda conn: seen.append(conn))
    return seen


class ImportChangesBehaviour:
    """What every backend must do; subclasses provide ``db_url``."""

    @pytest.fixture
    def store(self, db_url: str) -> Iterator[PinStore]:
        store = PinStore.from_url(db_url, HASHER, timeout_s=2)
        store.upsert_many(SEED)
        yield store
        store.close()

    def test_a_row_that_changes_nothing_is_not_written(self, store: PinStore) -> None:
        """Importing the same rows again reports them unchanged and leaves every stored
        value as it was, updated_at (the provisioning API's version) included."""
        before = snapshot(store)
        assert store.upsert_many(SEED) == ImportReport(created=0, updated=0, unchanged=3)
        assert snapshot(store) == before

    def test_a_dry_run_sorts_rows_as_the_import_does_without_writing(self, store: PinStore) -> None:
        """A field counts as a change only when it differs (phones as a set, the PIN by
        its hash, "-" only where there is something to clear); count_changes writes
        nothing and predicts exactly what upsert_many then reports and does."""
        same = [
            row("1001", "Erika Mustermann", (SHARED, ERIKA)),  # phones in another order
            ImportRow(2, "1002", None, None, "111111"),  # the PIN it has
            ImportRow(2, "1003", None, (), ""),  # "-" phones: none anyway; "-" PIN: a change
            row("1004", "Neu"),
        ]
        before = snapshot(store)
        assert store.count_changes(same) == ImportReport(created=1, updated=1, unchanged=2)
        different = [
            ImportRow(2, "1001", None, None, ""),  # clear the PIN
            ImportRow(2, "1002", "Maximilian", None, None),
            ImportRow(2, "1003", None, (ERIKA,), None),
        ]
        assert store.count_changes(different) == ImportReport(created=0, updated=3)
        assert snapshot(store) == before
        assert store.upsert_many(different) == ImportReport(created=0, updated=3)
        assert store.check_pin("1001", PIN) is None
        assert store.get("1002") == Account("1002", "Maximilian")
        assert store.accounts_for_phone(ERIKA) == ["1001", "1003"]

    def test_a_pin_hashed_under_an_old_pepper_is_rewritten(
        self, store: PinStore, db_url: str
    ) -> None:
        """The same PIN, hashed under a pepper since rotated, counts as a change (dry run
        and import) and is stored under the current key id."""
        hasher = PinHasher({"k1": PEPPER, "k2": b"rotated-pepper-0123"}, "k2")
        rotated = PinStore.from_url(db_url, hasher)
        try:
            assert rotated.count_changes([SEED[0]]) == ImportReport(created=0, updated=1)
            assert rotated.upsert_many([SEED[0]]) == ImportReport(created=0, updated=1)
            with rotated.engine.connect() as conn:
                key_id = conn.execute(
                    sa.select(accounts.c.pin_key_id).where(accounts.c.customer_number == "1001")
                ).scalar_one()
            assert key_id == "k2"
            assert rotated.check_pin("1001", PIN) == Account("1001", "Erika Mustermann")
        finally:
            rotated.close()

    def test_unlisted_names_the_accounts_a_file_lacks(self, store: PinStore) -> None:
        """unlisted returns the stored customer numbers not given, sorted."""
        assert store.unlisted({"1002", "7777"}) == ["1001", "1003"]
        assert store.unlisted({"1001", "1002", "1003"}) == []

    def test_many_accounts_are_deleted_in_chunks_each_cleaned_up_first(
        self, store: PinStore
    ) -> None:
        """delete_many deletes accounts and phones in one short transaction per chunk,
        after cleaning up each account of the chunk while it still exists."""
        doomed = bulk(store)[: 2 * CHUNK_ROWS + 100]
        cleaned: list[tuple[str, bool]] = []
        progress: list[int] = []
        committed = commits(store.engine)
        deleted = store.delete_many(
            doomed,
            lambda number: cleaned.append((number, store.get(number) is not None)),
            progress=progress.append,
        )
        assert deleted == len(doomed)
        assert cleaned == [(number, True) for number in doomed]
        assert progress == [CHUNK_ROWS, 2 * CHUNK_ROWS, len(doomed)]
        assert len(committed) == 3
        assert store.count() == 3 + BULK - len(doomed)
        assert store.accounts_for_phone("+4915100000000") == []
        assert store.accounts_for_phone(f"+49151{BULK - 1:08d}") == [str(500_000 + BULK - 1)]

    def test_a_failed_clean_up_keeps_its_chunk(self, store: PinStore) -> None:
        """When a clean-up fails, the chunks before it are deleted and its own chunk and
        the rest are kept (running the prune again finishes them)."""
        doomed = bulk(store)[: 2 * CHUNK_ROWS]
        fail_at = doomed[CHUNK_ROWS + 5]

        def clean_up(number: str) -> None:
            if number == fail_at:
                raise DependencyError("redis failed: down")

        with pytest.raises(DependencyError):
            store.delete_many(doomed, clean_up)
        assert store.get(doomed[CHUNK_ROWS - 1]) is None
        assert store.get(doomed[CHUNK_ROWS]) is not None
        assert store.count() == 3 + BULK - CHUNK_ROWS

    def test_an_account_already_gone_is_not_cleaned_up_nor_counted(self, store: PinStore) -> None:
        """Only accounts that exist when their chunk begins are cleaned up and counted."""
        cleaned: list[str] = []
        assert store.delete_many(["1001", "9999"], cleaned.append) == 1
        assert cleaned == ["1001"]
        assert store.accounts_for_phone(ERIKA) == []


class TestImportChangesSQLite(ImportChangesBehaviour):
    """On a SQLite file."""

    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'pins.sqlite3'}"
