"""Generated accounts, bulk-inserted into the product's own PIN-store tables.

Account ``i`` is fully determined by ``i`` (customer number, name, phone, PIN), so the
request generator can address any account without keeping a million PINs in memory.
Hashes come from the product's :class:`~ivr.store.hashing.PinHasher`; the tables and
indexes from :data:`ivr.store.pins.metadata`, exactly as the product creates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.hashing import PinHasher
from ivr.store.pins import account_phones, accounts, metadata

BATCH = 50_000
FIRST_CUSTOMER_NUMBER = 10_000_000


@dataclass(frozen=True)
class Account:
    """One generated account (the PIN is the benchmark's, not a customer's)."""

    index: int
    customer_number: str
    phone: str
    pin: str
    wrong_pin: str


def account(index: int) -> Account:
    """Account number ``index``: a single-owner mobile number and a scattered PIN."""
    pin = (index * 7_919 + 104_729) % 1_000_000
    return Account(
        index=index,
        customer_number=str(FIRST_CUSTOMER_NUMBER + index),
        # +49 151 plus eight digits: a valid German mobile number, unique per account.
        phone=f"+49151{index:08d}",
        pin=f"{pin:06d}",
        wrong_pin=f"{(pin + 1) % 1_000_000:06d}",
    )


def fill(url: str, count: int, hasher: PinHasher) -> None:
    """Create the product's tables at ``url`` and insert ``count`` accounts in batches."""
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                # Only for this bulk load: the file is thrown away if the machine dies.
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
            now = datetime.now(UTC)
            for start in range(0, count, BATCH):
                stop = min(start + BATCH, count)
                rows, phones = _batch(start, stop, hasher, now)
                conn.execute(accounts.insert(), rows)
                conn.execute(account_phones.insert(), phones)
    finally:
        engine.dispose()


def _batch(
    start: int, stop: int, hasher: PinHasher, now: datetime
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rows: list[dict[str, object]] = []
    phones: list[dict[str, object]] = []
    for acc in _accounts(start, stop):
        key_id, digest = hasher.make(acc.customer_number, acc.pin)
        # Explicit ids (sequential, like autoincrement) let phones reference them without
        # reading ids back, which keeps the insert a plain executemany.
        rows.append(
            {
                "id": acc.index + 1,
                "customer_number": acc.customer_number,
                "name": f"Kunde {acc.index}",
                "pin_key_id": key_id,
                "pin_hash": digest,
                "created_at": now,
                "updated_at": now,
            }
        )
        phones.append({"account_id": acc.index + 1, "phone": acc.phone})
    return rows, phones


def _accounts(start: int, stop: int) -> Iterator[Account]:
    for index in range(start, stop):
        yield account(index)
