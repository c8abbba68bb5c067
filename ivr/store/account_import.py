"""Write validated import rows in short transactions of :data:`CHUNK_ROWS` accounts each.

One transaction for a whole file held the database's write lock for as long as the file
took (49 s for 200,000 rows on SQLite): every PIN check meanwhile failed with "database
is locked" and callers were routed as unavailable. Now each chunk is a few bulk
statements and commits: look up which accounts exist (and their phones), insert the new
ones, update the ones the row changes (only the fields it gives), replace the phones
that differ. A row that changes nothing is not written at all, so its ``updated_at`` (the
provisioning API's version) stays. A PIN check waits at most one chunk. A database
failure part-way leaves the chunks before it written; the rows are validated before the
first chunk, so that only happens when the database fails.

:func:`count_changes` sorts the rows the same way without writing (``--dry-run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from ivr.exceptions import ImportRowError
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts

CHUNK_ROWS = 1000
T = TypeVar("T")

_IN_FILE = accounts.c.customer_number.in_(sa.bindparam("numbers", expanding=True))
# (customer number, id) of the accounts with the customer numbers ``numbers``.
IDS_OF_NUMBERS = sa.select(accounts.c.customer_number, accounts.c.id).where(_IN_FILE)
_CURRENT = sa.select(
    accounts.c.customer_number, accounts.c.id, accounts.c.name, accounts.c.pin_key_id,
    accounts.c.pin_hash,
).where(_IN_FILE)  # fmt: skip
_UPDATE = (
    accounts.update()
    .where(accounts.c.id == sa.bindparam("account_id"))
    .values(
        name=sa.bindparam("new_name"), pin_key_id=sa.bindparam("key_id"),
        pin_hash=sa.bindparam("digest"), updated_at=sa.bindparam("now"),
    )
)  # fmt: skip
_OF_IDS = account_phones.c.account_id.in_(sa.bindparam("ids", expanding=True))
_DROP_PHONES = account_phones.delete().where(_OF_IDS)
_PHONES = sa.select(account_phones.c.account_id, account_phones.c.phone).where(_OF_IDS)


@dataclass(frozen=True)
class ImportReport:
    """How many rows of an import created an account, changed one, or matched it already."""

    created: int
    updated: int
    unchanged: int = 0


@dataclass
class _Plan:
    """What one chunk does: rows that create, rows that change (with the stored row),
    how many change nothing, and the rows whose phones are (re)set."""

    fresh: list[ImportRow] = field(default_factory=list)
    changed: list[tuple[ImportRow, Any]] = field(default_factory=list)
    unchanged: int = 0
    phones: list[ImportRow] = field(default_factory=list)


def chunks(items: Sequence[T], size: int = CHUNK_ROWS) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_rows(
    engine: sa.Engine,
    hasher: PinHasher,
    rows: Sequence[ImportRow],
    progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Create or update every row, a chunk per transaction; ``progress(done)`` after each.
    ImportRowError (before anything is written) for a new account without a name."""
    _check_new_accounts_named(engine, rows)
    created = updated = unchanged = done = 0
    for chunk in chunks(rows):
        with engine.begin() as conn:
            plan = _plan(conn, hasher, chunk)
            _write(conn, hasher, plan, datetime.now(UTC))
        created, updated = created + len(plan.fresh), updated + len(plan.changed)
        unchanged, done = unchanged + plan.unchanged, done + len(chunk)
        progress(done)
    return ImportReport(created=created, updated=updated, unchanged=unchanged)


def count_changes(engine: sa.Engine, hasher: PinHasher, rows: Sequence[ImportRow]) -> ImportReport:
    """What :func:`write_rows` would report, without writing (the same ImportRowError)."""
    _check_new_accounts_named(engine, rows)
    created = updated = unchanged = 0
    for chunk in chunks(rows):
        with engine.connect() as conn:
            plan = _plan(conn, hasher, chunk)
        created, updated = created + len(plan.fresh), updated + len(plan.changed)
        unchanged += plan.unchanged
    return ImportReport(created=created, updated=updated, unchanged=unchanged)


def _check_new_accounts_named(engine: sa.Engine, rows: Sequence[ImportRow]) -> None:
    """A row without a name may only change an existing account."""
    unnamed = [row for row in rows if row.name is None]
    for chunk in chunks(unnamed):
        with engine.connect() as conn:
            numbers = [row.customer_number for row in chunk]
            known = {number for number, _ in conn.execute(IDS_OF_NUMBERS, {"numbers": numbers})}
        for row in chunk:
            if row.customer_number not in known:
                raise ImportRowError(row.line, f"name is required for the new account "
                                               f"{row.customer_number}")  # fmt: skip


def _credentials(
    hasher: PinHasher, row: ImportRow, old: tuple[str | None, str | None]
) -> tuple[str | None, str | None]:
    """(key id, digest) after the row: unchanged (no PIN given), removed (""), or new."""
    if row.pin is None:
        return old
    if not row.pin:
        return None, None
    return hasher.make(row.customer_number, row.pin)


def _pin_differs(hasher: PinHasher, row: ImportRow, key_id: str | None, digest: str | None) -> bool:
    """Whether the row's PIN cell changes the stored hash (one HMAC, as a PIN check costs).
    A hash under an old pepper counts as a change: the import rewrites it."""
    if row.pin is None:
        return False
    if key_id is None or digest is None:
        return row.pin != ""
    if not row.pin or hasher.needs_rehash(key_id):
        return True
    return not hasher.matches(row.customer_number, row.pin, key_id, digest)


def _plan(conn: sa.Connection, hasher: PinHasher, chunk: Sequence[ImportRow]) -> _Plan:
    """Sort one chunk's rows by what they do to the stored accounts (two reads)."""
    numbers = [row.customer_number for row in chunk]
    current = {r.customer_number: r for r in conn.execute(_CURRENT, {"numbers": numbers})}
    stored: dict[int, set[str]] = {}
    ids = [current[row.customer_number].id for row in chunk
           if row.phones is not None and row.customer_number in current]  # fmt: skip
    if ids:
        for account_id, phone in conn.execute(_PHONES, {"ids": ids}):
            stored.setdefault(account_id, set()).add(phone)
    plan = _Plan()
    for row in chunk:
        old = current.get(row.customer_number)
        if old is None:
            plan.fresh.append(row)
            plan.phones += [row] if row.phones else []
            continue
        new_phones = row.phones is not None and set(row.phones) != stored.get(old.id, set())
        if (
            new_phones
            or (row.name is not None and row.name != old.name)
            or _pin_differs(hasher, row, old.pin_key_id, old.pin_hash)
        ):
            plan.changed.append((row, old))
            plan.phones += [row] if new_phones else []
        else:
            plan.unchanged += 1
    return plan


def _write(conn: sa.Connection, hasher: PinHasher, plan: _Plan, now: datetime) -> None:
    """One chunk's plan in bulk statements. Fields a row leaves out keep their values."""
    ids = {row.customer_number: old.id for row, old in plan.changed}
    if plan.fresh:
        conn.execute(accounts.insert(), [
            {"customer_number": row.customer_number, "name": row.name, "created_at": now,
             "updated_at": now,
             **dict(zip(("pin_key_id", "pin_hash"), _credentials(hasher, row, (None, None)),
                        strict=True))}
            for row in plan.fresh
        ])  # fmt: skip
        fresh_numbers = [row.customer_number for row in plan.fresh if row.phones]
        if fresh_numbers:
            ids.update((n, i) for n, i in conn.execute(IDS_OF_NUMBERS, {"numbers": fresh_numbers}))
    if plan.changed:
        updates = []
        for row, old in plan.changed:
            key_id, digest = _credentials(hasher, row, (old.pin_key_id, old.pin_hash))
            updates.append({"account_id": old.id, "new_name": row.name or old.name,
                            "key_id": key_id, "digest": digest, "now": now})  # fmt: skip
        conn.execute(_UPDATE, updates)
    _replace_phones(conn, plan, ids)


def _replace_phones(conn: sa.Connection, plan: _Plan, ids: dict[str, int]) -> None:
    """The phones of the rows that set them anew (``()``: none any more)."""
    changed = {row.customer_number for row, _ in plan.changed}
    existing = [ids[row.customer_number] for row in plan.phones if row.customer_number in changed]
    if existing:
        conn.execute(_DROP_PHONES, {"ids": existing})
    phones = [
        {"account_id": ids[row.customer_number], "phone": phone}
        for row in plan.phones
        for phone in row.phones or ()
    ]
    if phones:
        conn.execute(account_phones.insert(), phones)
