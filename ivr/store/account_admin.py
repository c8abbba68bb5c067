"""Operator and portal operations on one account: show it (never PIN material), set its PIN.

Kept apart from :class:`~ivr.store.pins.PinStore`, whose reads serve the webhooks: these
run rarely, in their own short transactions on the same engine and hasher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.exceptions import AccountNotFound
from ivr.store.hashing import PinHasher
from ivr.store.pin_tables import account_phones, accounts
from ivr.store.sql_engine import translate_errors

_DETAILS = sa.select(
    accounts.c.id, accounts.c.name, accounts.c.pin_key_id, accounts.c.updated_at
).where(accounts.c.customer_number == sa.bindparam("number"))
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
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
        return AccountDetails(customer_number, row.name, tuple(phones),
                              row.pin_key_id is not None, updated)  # fmt: skip

    def set_pin(self, customer_number: str, pin: str) -> None:
        """Store ``pin`` (its keyed hash) for ``customer_number``; the caller checked it
        against the PIN policy. AccountNotFound when there is no such account."""
        key_id, digest = self.hasher.make(customer_number, pin)
        update = (
            accounts.update()
            .where(accounts.c.customer_number == customer_number)
            .values(pin_key_id=key_id, pin_hash=digest, updated_at=datetime.now(UTC))
        )
        with translate_errors("PIN store"), self.engine.begin() as conn:
            changed = conn.execute(update).rowcount
        if changed == 0:
            raise AccountNotFound(f"no account with customer number {customer_number}")
