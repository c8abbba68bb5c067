"""The PIN store: accounts, their phone numbers and keyed PIN hashes (SQLAlchemy Core).

Works on SQLite (local testing) and PostgreSQL (``postgresql+psycopg://``). The store
never sees a PIN in clear beyond hashing it in memory; the database only holds digests.
Every database failure surfaces as :class:`~ivr.exceptions.DependencyError` so the call
flow can route the caller to an agent instead of failing the webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ivr.exceptions import AccountNotFound, DependencyError
from ivr.store.account_import import ImportReport, count_changes, write_rows
from ivr.store.account_prune import delete_accounts, unlisted
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_queries import RawSelect
from ivr.store.pin_tables import account_phones, accounts, metadata
from ivr.store.sql_cancel import Canceller
from ivr.store.sql_engine import create_all, create_engine, create_read_engine, translate_errors

__all__ = [
    "Account", "ImportReport", "PinStore", "account_phones", "accounts", "create_engine",
    "metadata",
]  # fmt: skip

log = logging.getLogger(__name__)
T = TypeVar("T")

# Built once at import. The per-webhook reads _BY_PHONE and _CREDENTIALS run as RawSelects
# (compiled once per store); the rest go through SQLAlchemy and its compiled cache.
_BY_PHONE = (
    sa.select(accounts.c.customer_number)
    .join(account_phones, account_phones.c.account_id == accounts.c.id)
    .where(account_phones.c.phone == sa.bindparam("phone"))
    .order_by(accounts.c.customer_number)
    .limit(2)  # the flow only needs to know "exactly one owner" versus "several"
)
_CREDENTIALS = sa.select(accounts.c.name, accounts.c.pin_key_id, accounts.c.pin_hash).where(
    accounts.c.customer_number == sa.bindparam("number")
)
_NAME = sa.select(accounts.c.name).where(accounts.c.customer_number == sa.bindparam("number"))
_REHASH = (
    sa.update(accounts)
    .where(accounts.c.customer_number == sa.bindparam("number"))
    .where(accounts.c.pin_key_id == sa.bindparam("old_key_id"))
    .values(pin_key_id=sa.bindparam("key_id"), pin_hash=sa.bindparam("digest"))
)
_COUNT = sa.select(sa.func.count()).select_from(accounts)
_PING = sa.text("SELECT 1")


@dataclass(frozen=True)
class Account:
    """What the flow and the screen-pop may know about a verified account."""

    customer_number: str
    name: str


class PinStore:
    """Accounts, phone ownership and PIN verification over one SQLAlchemy engine."""

    def __init__(
        self, engine: sa.Engine, hasher: PinHasher, read_engine: sa.Engine | None = None
    ) -> None:
        self._engine = engine
        # The webhooks' two hot reads may run on a leaner engine (see ivr.store.sql_engine).
        self._reads = read_engine or engine
        self._hasher = hasher
        # Aborts a statement whose webhook ran out of time (ivr.deadline).
        self.canceller = Canceller()
        for watched in {id(engine): engine, id(self._reads): self._reads}.values():
            self.canceller.attach(watched)
        self._by_phone = RawSelect(self._reads, _BY_PHONE, self.canceller)
        self._credentials = RawSelect(self._reads, _CREDENTIALS, self.canceller)
        # Unknown accounts are compared against this digest so that they cost the same
        # HMAC and compare as known ones: timing must not reveal whether one exists.
        self._dummy = hasher.make("\x00no-such-account", "\x00")

    @property
    def reads(self) -> sa.Engine:
        """The engine of the webhooks' hot reads (the same as :attr:`engine`, or leaner)."""
        return self._reads

    @property
    def hasher(self) -> PinHasher:
        """The keyed hash of this store's PINs (for other writers of the same table)."""
        return self._hasher

    @property
    def engine(self) -> sa.Engine:
        """The SQL engine, for other stores that share the database (e.g. the audit log)."""
        return self._engine

    @classmethod
    def connect(
        cls,
        url: str,
        hasher: PinHasher,
        timeout_s: float = 1.0,
        read_timeout_s: float | None = None,
    ) -> PinStore:
        """The store of the database at ``url``, with short timeouts; nothing is asked of
        the database yet (see :meth:`create_tables`). The webhooks' reads wait at most
        ``read_timeout_s`` (default ``timeout_s``)."""
        try:
            engine = create_engine(url, timeout_s)
            reads = create_read_engine(url, read_timeout_s or timeout_s, engine)
        except (sa_exc.ArgumentError, ImportError, ValueError) as exc:
            raise DependencyError(f"PIN store: invalid [pin_store] url: {exc}") from None
        return cls(engine, hasher, reads)

    @classmethod
    def from_url(cls, url: str, hasher: PinHasher, timeout_s: float = 1.0) -> PinStore:
        """Open the database at ``url`` with short timeouts and create missing tables."""
        store = cls.connect(url, hasher, timeout_s)
        try:
            store.create_tables()
        except DependencyError:
            store.close()
            raise
        return store

    def create_tables(self) -> None:
        """Create the tables and index if they do not exist yet."""
        self._run(lambda: create_all(metadata, self._engine))

    def ping(self) -> None:
        """Raise DependencyError unless the database answers a trivial query."""
        self._read(lambda conn: conn.execute(_PING).scalar_one())

    def accounts_for_phone(self, e164: str) -> list[str]:
        """Customer numbers owning ``e164``; at most two, since two already mean "shared"."""
        return [number for (number,) in self._run(lambda: self._by_phone.rows({"phone": e164}))]

    def check_pin(self, customer_number: str, pin: str) -> Account | None:
        """The account when ``pin`` is its PIN, else None (also for unknown accounts)."""
        rows = self._run(lambda: self._credentials.rows({"number": customer_number}))
        # At most one row (unique number); unknown accounts get the same query and one HMAC.
        name, key_id, digest = rows[0] if rows else (None, None, None)
        if key_id is None or digest is None:
            self._hasher.matches(customer_number, pin, *self._dummy)
            return None
        if not self._hasher.matches(customer_number, pin, key_id, digest):
            return None
        if self._hasher.needs_rehash(key_id):
            self._rehash(customer_number, pin, key_id)
        return Account(customer_number=customer_number, name=name)

    def get(self, customer_number: str) -> Account | None:
        """The account with ``customer_number``, or None."""
        name = self._read(
            lambda conn: conn.execute(_NAME, {"number": customer_number}).scalar_one_or_none()
        )
        return None if name is None else Account(customer_number=customer_number, name=name)

    def delete(self, customer_number: str) -> None:
        """Delete the account and its phone numbers (nothing else: the CLI and the API
        erase through :mod:`ivr.erasure`); AccountNotFound when there is none."""
        if self.delete_many([customer_number], clean_up=lambda number: None) == 0:
            raise AccountNotFound(f"no account with customer number {customer_number}")

    def upsert_many(
        self, rows: Sequence[ImportRow], progress: Callable[[int], None] = lambda done: None
    ) -> ImportReport:
        """Create or update every row (replacing its phones), in short transactions of a
        chunk each (:mod:`ivr.store.account_import`); ``progress(done)`` after each."""
        return self._run(lambda: write_rows(self._engine, self._hasher, rows, progress))

    def count_changes(self, rows: Sequence[ImportRow]) -> ImportReport:
        """What :meth:`upsert_many` would do with ``rows``, without writing (a dry run)."""
        return self._run(lambda: count_changes(self._engine, self._hasher, rows))

    def unlisted(self, listed: Collection[str]) -> list[str]:
        """Customer numbers of the stored accounts not in ``listed`` (what a prune deletes)."""
        return self._run(lambda: unlisted(self._engine, listed))

    def delete_many(
        self,
        numbers: Sequence[str],
        clean_up: Callable[[str], object],
        progress: Callable[[int], None] = lambda done: None,
    ) -> int:
        """Delete the accounts ``numbers`` in short transactions, each account's
        ``clean_up(customer_number)`` first (:mod:`ivr.store.account_prune`); how many
        were deleted."""
        return self._run(lambda: delete_accounts(self._engine, numbers, clean_up, progress))

    def count(self) -> int:
        """Number of accounts."""
        return self._read(lambda conn: int(conn.execute(_COUNT).scalar_one()))

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
        if self._reads is not self._engine:
            self._reads.dispose()

    # --- internals -----------------------------------------------------------------------

    def _rehash(self, customer_number: str, pin: str, old_key_id: str) -> None:
        """Rewrite a verified PIN's hash under the current pepper (best effort)."""
        key_id, digest = self._hasher.make(customer_number, pin)
        params = {"number": customer_number, "old_key_id": old_key_id}
        try:
            self._run(lambda: self._write(_REHASH, {**params, "key_id": key_id, "digest": digest}))
        except DependencyError as exc:
            # The PIN was right; failing the caller because of a rotation chore would be
            # wrong. The old hash stays valid and is retried on the next success.
            log.warning("PIN rehash for an account failed, will retry later: %s", exc)

    def _write(self, statement: sa.Executable, params: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(statement, params)

    def _read(self, query: Callable[[sa.Connection], T]) -> T:
        def work() -> T:
            with self._engine.connect() as conn:
                return query(conn)

        return self._run(work)

    def _run(self, work: Callable[[], T]) -> T:
        with translate_errors("PIN store"):
            return work()
