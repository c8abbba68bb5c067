"""Write validated import rows in short transactions of :data:`CHUNK_ROWS` accounts each.

One transaction for a whole file held the database's write lock for as long as the file
took (49 s for 200,000 rows on SQLite): every PIN check meanwhile failed with "database
is locked" and callers were routed as unavailable. Now each chunk is a few bulk
statements (look up which accounts exist, insert the new ones, update the others,
replace their phones) and commits, so readers — in SQLite's WAL mode too — wait at most
one chunk. A database failure part-way leaves the chunks before it written; the rows are
validated before the first chunk, so that only happens when the database fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts

CHUNK_ROWS = 1000

_IDS = sa.select(accounts.c.customer_number, accounts.c.id).where(
    accounts.c.customer_number.in_(sa.bindparam("numbers", expanding=True))
)
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
    """Create or update every row, a chunk per transaction; ``progress(done)`` after each."""
    created = updated = done = 0
    for chunk in chunks(rows):
        with engine.begin() as conn:
            new, changed = _write_chunk(conn, hasher, chunk, datetime.now(UTC))
        created, updated, done = created + new, updated + changed, done + len(chunk)
        progress(done)
    return ImportReport(created=created, updated=updated)


def _write_chunk(
    conn: sa.Connection, hasher: PinHasher, chunk: Sequence[ImportRow], now: datetime
) -> tuple[int, int]:
    """One chunk in bulk statements; (created, updated)."""
    numbers = [row.customer_number for row in chunk]
    ids: dict[str, int] = {number: id_ for number, id_ in conn.execute(_IDS, {"numbers": numbers})}
    digests = {row.customer_number: hasher.make(row.customer_number, row.pin) for row in chunk}
    fresh = [row for row in chunk if row.customer_number not in ids]
    known = [row for row in chunk if row.customer_number in ids]
    if fresh:
        conn.execute(accounts.insert(), [
            {"customer_number": row.customer_number, "name": row.name,
             "pin_key_id": digests[row.customer_number][0],
             "pin_hash": digests[row.customer_number][1], "created_at": now, "updated_at": now}
            for row in fresh
        ])  # fmt: skip
        fresh_numbers = [row.customer_number for row in fresh]
        ids.update((number, id_) for number, id_ in conn.execute(_IDS, {"numbers": fresh_numbers}))
    if known:
        conn.execute(_UPDATE, [
            {"account_id": ids[row.customer_number], "new_name": row.name,
             "key_id": digests[row.customer_number][0],
             "digest": digests[row.customer_number][1], "now": now}
            for row in known
        ])  # fmt: skip
        conn.execute(_DROP_PHONES, {"ids": [ids[row.customer_number] for row in known]})
    phones = [
        {"account_id": ids[row.customer_number], "phone": phone}
        for row in chunk
        for phone in row.phones
    ]
    if phones:
        conn.execute(account_phones.insert(), phones)
    return len(fresh), len(known)
