"""Delete many accounts in short transactions: the accounts a full-truth import does not
list (``ivr accounts import --prune``), and single deletions (``ivr accounts delete``).

Each chunk of :data:`~ivr.store.account_import.CHUNK_ROWS` accounts is cleaned up first,
account by account, through the one ``clean_up`` function the caller gives (outside any
transaction: it may talk to Redis and write the audit trail), then its rows go in one
short transaction. Cleaning up first means the clean-up can still read the account
(e.g. its phones), and a clean-up that fails leaves the account in place: running the
command again completes both, where the reverse order would have lost the clean-up of
accounts already gone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import sqlalchemy as sa

from ivr.store.account_import import IDS_OF_NUMBERS, chunks
from ivr.store.pin_tables import account_phones, accounts

# Customer numbers stream from the database this many at a time.
_SCAN_BATCH = 10_000
_NUMBERS = sa.select(accounts.c.customer_number)
_OF_IDS: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
_DROP_PHONES = account_phones.delete().where(account_phones.c.account_id.in_(_OF_IDS))
_DROP_ACCOUNTS = accounts.delete().where(accounts.c.id.in_(_OF_IDS))


def unlisted(engine: sa.Engine, listed: Collection[str]) -> list[str]:
    """Customer numbers of the stored accounts that ``listed`` lacks, sorted."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_SCAN_BATCH).execute(_NUMBERS)
        return sorted(number for (number,) in result if number not in listed)


def delete_accounts(
    engine: sa.Engine,
    numbers: Sequence[str],
    clean_up: Callable[[str], object],
    progress: Callable[[int], None] = lambda done: None,
) -> int:
    """Delete the accounts ``numbers`` (with their phones), a chunk per transaction;
    ``clean_up(customer_number)`` for each of a chunk's accounts that exist, just before
    the chunk's rows go; ``progress(done)`` after each chunk. Returns how many accounts
    were deleted: those that existed when their chunk began (``clean_up`` may delete one
    itself). An exception from ``clean_up`` stops before its chunk is deleted."""
    deleted = done = 0
    for chunk in chunks(numbers):
        with engine.connect() as conn:
            found = {n: i for n, i in conn.execute(IDS_OF_NUMBERS, {"numbers": list(chunk)})}
        for number in chunk:
            if number in found:
                clean_up(number)
        if found:
            with engine.begin() as conn:
                ids = list(found.values())
                # Not left to ON DELETE CASCADE: SQLite cascades only with foreign_keys on.
                conn.execute(_DROP_PHONES, {"ids": ids})
                conn.execute(_DROP_ACCOUNTS, {"ids": ids})
        deleted, done = deleted + len(found), done + len(chunk)
        progress(done)
    return deleted
