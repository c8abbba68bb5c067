"""The PIN store's tables: accounts and their phone numbers (never a PIN, only its
keyed hash). Shared by the webhooks' store, the import writer and account admin."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_number", sa.String(12), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("pin_key_id", sa.String(32)),
    sa.Column("pin_hash", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

account_phones = sa.Table(
    "account_phones",
    metadata,
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("phone", sa.String(16), primary_key=True),
    sa.Index("ix_account_phones_phone", "phone"),
)
