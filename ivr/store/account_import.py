"""Write validated import rows in short transactions of :data:`CHUNK_ROWS` accounts each.

One transaction for a whole file held the database's write lock for as long as the file
took (49 s for 200,000 rows on SQLite): every PIN check meanwhile failed with "database
is locked" and callers were routed as unavailable. Now each chunk is a few bulk
statements and commits: look up which accounts exist, insert the new ones, update the
others (only the fields a row gives), replace the phones of the rows that give them. A
PIN check waits at most one chunk. A database failure part-way leaves the chunks before
it written; the rows are validated before the first chunk, so that only happens when
the database fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ivr.exceptions import ImportRowError
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts

CHUNK_ROWS = 1000

_IN_FILE = accounts.c.customer_number.in_(sa.bindparam("numbers", expanding=True))
_IDS = sa.select(accounts.c.customer_number, accounts.c.id).where(_IN_FILE)
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
_DROP_PHONES = account_phones.delete().where(
    account_phones.c.account_id.in_(sa.bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class ImportReport:
    """How many accounts an import created and how many it updated."""

    created: int
    updated: int


def chunks(rows: Sequence[ImportRow], size: int = CHUNK_ROWS) -> Iterator[Sequence[ImportRow]]:
    """``rows`` in slices of ``size``."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def write_rows(
    engine: sa.Engine,
    hasher: PinHasher,
    rows: Sequence[ImportRow],
    progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Create or update every row, a chunk per transaction; ``progress(done)`` after each.
    ImportRowError (before anything is written) for a new account without a name."""
    _check_new_accounts_named(engine, rows)
    created = updated = done = 0
    for chunk in chunks(rows):
        with engine.begin() as conn:
            new, changed = _write_chunk(conn, hasher, chunk, datetime.now(UTC))
        created, updated, done = created + new, updated + changed, done + len(chunk)
        progress(done)
    return ImportReport(created=created, updated=updated)


def _check_new_accounts_named(engine: sa.Engine, rows: Sequence[ImportRow]) -> None:
    """A row without a name may only change an existing account."""
    unnamed = [row for row in rows if row.name is None]
    for chunk in chunks(unnamed):
        with engine.connect() as conn:
            numbers = [row.customer_number for row in chunk]
            known = {number for number, _ in conn.execute(_IDS, {"numbers": numbers})}
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


def _write_chunk(
    conn: sa.Connection, hasher: PinHasher, chunk: Sequence[ImportRow], now: datetime
) -> tuple[int, int]:
    """One chunk in bulk statements; (created, updated). Fields a row leaves out keep
    their stored values."""
    numbers = [row.customer_number for row in chunk]
    current = {r.customer_number: r for r in conn.execute(_CURRENT, {"numbers": numbers})}
    fresh = [row for row in chunk if row.customer_number not in current]
    known = [row for row in chunk if row.customer_number in current]
    ids = {number: r.id for number, r in current.items()}
    if fresh:
        conn.execute(accounts.insert(), [
            {"customer_number": row.customer_number, "name": row.name, "created_at": now,
             "updated_at": now,
             **dict(zip(("pin_key_id", "pin_hash"), _credentials(hasher, row, (None, None)),
                        strict=True))}
            for row in fresh
        ])  # fmt: skip
        fresh_numbers = [row.customer_number for row in fresh]
        ids.update((n, i) for n, i in conn.execute(_IDS, {"numbers": fresh_numbers}))
    if known:
        updates = []
        for row in known:
            old = current[row.customer_number]
            key_id, digest = _credentials(hasher, row, (old.pin_key_id, old.pin_hash))
            updates.append({"account_id": old.id, "new_name": row.name or old.name,
                            "key_id": key_id, "digest": digest, "now": now})  # fmt: skip
        conn.execute(_UPDATE, updates)
    _replace_phones(conn, [row for row in chunk if row.phones is not None], ids, current)
    return len(fresh), len(known)


def _replace_phones(
    conn: sa.Connection, rows: list[ImportRow], ids: dict[str, int], current: dict[str, Any]
) -> None:
    """The phones of the rows that give them (``()``: none any more)."""
    existing = [ids[row.customer_number] for row in rows if row.customer_number in current]
    if existing:
        conn.execute(_DROP_PHONES, {"ids": existing})
    phones = [
        {"account_id": ids[row.customer_number], "phone": phone}
        for row in rows
        for phone in row.phones or ()
    ]
    if phones:
        conn.execute(account_phones.insert(), phones)
