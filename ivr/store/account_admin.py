"""Operator and portal operations on one account: show it (never PIN material), create,
change or delete it, set its PIN.

Kept apart from :class:`~ivr.store.pins.PinStore`, whose reads serve the webhooks: these
run rarely, in their own short transactions on the same engine and hasher.

Each account has a version (:attr:`AccountDetails.version`, the API's ``ETag``) derived
from its ``updated_at``, which every change moves. A change that names the version it
expects (:class:`Expect`) is written only if the row still has it: the UPDATE's WHERE
compares ``updated_at``, so two concurrent editors cannot both win, on SQLite and on
PostgreSQL alike, without holding locks. A change that changes nothing writes nothing,
so a repeated request keeps the version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ivr.account_fields import AccountChange
from ivr.exceptions import AccountNotFound, VersionMismatch
from ivr.store.account_import import IDS_OF_NUMBERS
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts
from ivr.store.sql_engine import as_utc, translate_errors

_DETAILS = sa.select(
    accounts.c.id, accounts.c.name, accounts.c.pin_key_id, accounts.c.pin_hash,
    accounts.c.updated_at,
).where(accounts.c.customer_number == sa.bindparam("number"))  # fmt: skip
_PHONES = (
    sa.select(account_phones.c.phone)
    .where(account_phones.c.account_id == sa.bindparam("account_id"))
    .order_by(account_phones.c.phone)
)


@dataclass(frozen=True)
class AccountDetails:
    """An account as an operator or the customer portal may see it: no PIN material
    beyond whether one is set."""

    customer_number: str
    name: str
    phones: tuple[str, ...]
    pin_set: bool
    updated_at: datetime

    @property
    def version(self) -> str:
        """An opaque tag that changes with every change of the account (a strong ETag)."""
        return version_of(self.customer_number, self.updated_at)


@dataclass(frozen=True)
class Expect:
    """What a change requires of the account's current version: one of ``match``
    (``If-Match``; ``"*"``: any; None: no requirement) and none of ``none_match``
    (``If-None-Match``; ``"*"``: that there is no account)."""

    match: tuple[str, ...] | None = None
    none_match: tuple[str, ...] = ()

    def check(self, current: str | None) -> None:
        """Raise VersionMismatch unless ``current`` (None: no account) is as expected."""
        if current is not None and ("*" in self.none_match or current in self.none_match):
            raise VersionMismatch("the account exists at a version the request excludes")
        if self.match is None:
            return
        if current is None or ("*" not in self.match and current not in self.match):
            raise VersionMismatch("the account is not at the version given")


# No requirement on the version: the default of every change.
ANY_VERSION = Expect()


def version_of(customer_number: str, updated_at: datetime) -> str:
    """The version tag of an account last changed at ``updated_at``."""
    moment = as_utc(updated_at).isoformat()
    digest = hashlib.sha256(f"{customer_number}\0{moment}".encode()).hexdigest()
    return f'"{digest[:32]}"'


@dataclass(frozen=True)
class AccountAdmin:
    """Show and change single accounts of the PIN store's database."""

    engine: sa.Engine
    hasher: PinHasher

    def details(self, customer_number: str) -> AccountDetails:
        """The account ``customer_number``; AccountNotFound when there is none."""
        with translate_errors("PIN store"), self.engine.connect() as conn:
            row = conn.execute(_DETAILS, {"number": customer_number}).one_or_none()
            if row is None:
                raise AccountNotFound(f"no account with customer number {customer_number}")
            phones = conn.execute(_PHONES, {"account_id": row.id}).scalars().all()
        return _details(customer_number, row, phones)

    def write(
        self, customer_number: str, change: AccountChange, *, create: bool, replace: bool,
        expect: Expect = ANY_VERSION,
    ) -> tuple[AccountDetails, bool]:  # fmt: skip
        """Apply ``change``; the account as it is now, and whether it was created.

        ``create`` makes a missing account (``change.name`` is then required), else
        AccountNotFound; ``replace`` sets phones not given to none (a PUT), else keeps
        them. A PIN not given is kept either way. VersionMismatch if ``expect`` fails,
        also when another change lands between our read and our write.
        """
        with translate_errors("PIN store"), self.engine.begin() as conn:
            row = _read_for_write(conn, customer_number)
            expect.check(None if row is None else version_of(customer_number, row.updated_at))
            if row is None:
                if not create or change.name is None:
                    raise AccountNotFound(f"no account with customer number {customer_number}")
                self._insert(conn, customer_number, change)
                created = True
            else:
                phones = tuple(conn.execute(_PHONES, {"account_id": row.id}).scalars())
                self._update(conn, customer_number, row, phones, change, replace)
                created = False
            row = conn.execute(_DETAILS, {"number": customer_number}).one()
            phones = tuple(conn.execute(_PHONES, {"account_id": row.id}).scalars())
        return _details(customer_number, row, phones), created

    def delete(self, customer_number: str, expect: Expect = ANY_VERSION) -> bool:
        """Delete the account (its phones go with it); False if there was none.
        VersionMismatch if ``expect`` fails."""
        with translate_errors("PIN store"), self.engine.begin() as conn:
            row = _read_for_write(conn, customer_number)
            expect.check(None if row is None else version_of(customer_number, row.updated_at))
            if row is None:
                return False
            conn.execute(account_phones.delete().where(account_phones.c.account_id == row.id))
            conn.execute(accounts.delete().where(accounts.c.id == row.id))
        return True

    def _insert(self, conn: sa.Connection, customer_number: str, change: AccountChange) -> None:
        now = datetime.now(UTC)
        key_id, digest = (
            self.hasher.make(customer_number, change.pin) if change.pin else (None, None)
        )
        result = conn.execute(accounts.insert().values(
            customer_number=customer_number, name=change.name, pin_key_id=key_id,
            pin_hash=digest, created_at=now, updated_at=now,
        ))  # fmt: skip
        (account_id,) = result.inserted_primary_key or (None,)
        _set_phones(conn, account_id, change.phones or ())

    def _update(
        self, conn: sa.Connection, customer_number: str, row: Any,
        phones: tuple[str, ...], change: AccountChange, replace: bool,
    ) -> None:  # fmt: skip
        name = change.name if change.name is not None else row.name
        new_phones = change.phones if change.phones is not None else (() if replace else phones)
        key_id, digest = row.pin_key_id, row.pin_hash
        if change.pin is not None:
            key_id, digest = self.hasher.make(customer_number, change.pin)
        values = {"name": name, "pin_key_id": key_id, "pin_hash": digest}
        same_phones = set(new_phones) == set(phones)
        if same_phones and values == {k: getattr(row, k) for k in values}:
            return  # nothing changes: nothing written, the version stays
        # Always a later instant than the stored one: the version must move.
        values["updated_at"] = max(datetime.now(UTC), as_utc(row.updated_at) + _TICK)
        changed = conn.execute(
            accounts.update()
            .where(accounts.c.id == row.id, accounts.c.updated_at == row.updated_at)
            .values(**values)
        ).rowcount
        if changed == 0:
            raise VersionMismatch("the account changed meanwhile")
        if not same_phones:
            conn.execute(account_phones.delete().where(account_phones.c.account_id == row.id))
            _set_phones(conn, row.id, new_phones)

    def set_pin(
        self, customer_number: str, pin: str, expect: Expect = ANY_VERSION
    ) -> AccountDetails:
        """Store ``pin`` (its keyed hash) for ``customer_number``; the caller checked it
        against the PIN policy. AccountNotFound when there is no such account."""
        details, _ = self.write(customer_number, AccountChange(pin=pin), create=False,
                                replace=False, expect=expect)  # fmt: skip
        return details


def existing(engine: sa.Engine, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` have an account."""
    with translate_errors("PIN store"), engine.connect() as conn:
        return set(conn.execute(IDS_OF_NUMBERS, {"numbers": list(numbers)}).scalars())


_TICK = timedelta(microseconds=1)
# On SQLite the driver starts a transaction only at the first write, so a read before it
# would see no lock at all. A write statement that matches nothing takes the write lock
# first: the next writer waits for our commit, then reads our version and gets a clear
# VersionMismatch. (The UPDATE's WHERE on updated_at guards the same race on its own.)
_SQLITE_WRITE_LOCK = sa.text("UPDATE accounts SET name = name WHERE 0 = 1")


def _read_for_write(conn: sa.Connection, customer_number: str) -> Any:
    """The account's row, read so that no other writer changes it before we commit."""
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_WRITE_LOCK)
        return conn.execute(_DETAILS, {"number": customer_number}).one_or_none()
    return conn.execute(_DETAILS.with_for_update(), {"number": customer_number}).one_or_none()


def _details(customer_number: str, row: Any, phones: Sequence[str]) -> AccountDetails:
    return AccountDetails(customer_number, row.name, tuple(sorted(phones)),
                          row.pin_key_id is not None, as_utc(row.updated_at))  # fmt: skip


def _set_phones(conn: sa.Connection, account_id: Any, phones: Sequence[str]) -> None:
    if phones:
        conn.execute(account_phones.insert(),
                     [{"account_id": account_id, "phone": phone} for phone in phones])  # fmt: skip
