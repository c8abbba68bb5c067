"""``ivr accounts``: import accounts from CSV, delete an account, lift a lockout.

Every failure prints exactly one ``error: ...`` line on stderr and exits with status 1;
operators script these commands, so there are no tracebacks and no partial imports.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from ivr import unlock
from ivr.cli.errors import EXPECTED_ERRORS, fail, one_line_errors
from ivr.config import Settings
from ivr.exceptions import ConfigError, ImportRowError
from ivr.store.accounts_csv import ImportRow, parse_accounts
from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.lockout import Lockout
from ivr.store.pins import PinStore
from ivr.store.redis_client import open_link


@click.group("accounts")
def accounts() -> None:
    """Manage the accounts in the PIN store."""


@accounts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def import_accounts(settings: Settings, file: Path) -> None:
    """Create or update the accounts in FILE (customer_number,name,phones,pin)."""
    rows = _read_rows(settings, file)
    with one_line_errors():
        store = _open_store(settings)
        try:
            report = store.upsert_many(rows)
        finally:
            store.close()
    click.echo(
        f"imported {len(rows)} accounts ({report.created} created, {report.updated} updated)"
    )


@accounts.command("delete")
@click.argument("customer_number")
@click.pass_obj
def delete_account(settings: Settings, customer_number: str) -> None:
    """Delete the account CUSTOMER_NUMBER and clear its lockout."""
    with one_line_errors():
        store = _open_store(settings)
        try:
            store.delete(customer_number)
        finally:
            store.close()
    click.echo(f"deleted account {customer_number}")
    # Without Redis there are no lockouts to clear; the deletion itself is complete.
    if not settings.redis.url:
        return
    try:
        cleared = _unlock(settings, customer_number)
    except EXPECTED_ERRORS as exc:
        fail(f"account {customer_number} was deleted, but its lockout was not cleared: {exc}")
    if cleared:
        click.echo(f"cleared the lockout of account {customer_number}")


@accounts.command("unlock")
@click.argument("customer_number")
@click.pass_obj
def unlock_account(settings: Settings, customer_number: str) -> None:
    """Lift the lockout of CUSTOMER_NUMBER so PIN entry works again at once."""
    with one_line_errors():
        if not settings.redis.url:
            raise ConfigError("[redis] url is not set; lockouts live in Redis, nothing to unlock")
        cleared = _unlock(settings, customer_number)
    if cleared:
        click.echo(f"unlocked account {customer_number}")
    else:
        click.echo(f"account {customer_number} had no lockout or failed attempts")


def _read_rows(settings: Settings, file: Path) -> list[ImportRow]:
    """Every row of ``file``, validated, before anything touches the database."""
    # utf-8-sig: files saved by spreadsheet programs often start with a byte-order mark.
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            return parse_accounts(
                stream,
                policy=settings.pin_policy(),
                default_region=settings.server.default_region,
            )
    except ImportRowError as exc:
        fail(f"{file} {exc}")  # "FILE line 7: ..."
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")


def _open_store(settings: Settings, hasher: PinHasher | None = None) -> PinStore:
    hasher = hasher or PinHasher.from_settings(settings.pin_store)
    return PinStore.from_url(settings.pin_store.url, hasher, settings.pin_store.timeout_s)


def _unlock(settings: Settings, customer_number: str) -> bool:
    """Audit, then clear the account's lockout counters (:mod:`ivr.unlock`)."""
    hasher = PinHasher.from_settings(settings.pin_store)
    store = _open_store(settings, hasher)
    try:
        audit = AuditStore.on(store.engine)
        link = open_link(settings.redis)  # lazy: Redis is first used after the audit row
        try:
            lockout = Lockout(link, KeyLayout(settings.redis.key_prefix), settings.lockout)
            return unlock.unlock_account(
                customer_number,
                actor=_operator(),
                source=unlock.SOURCE_CLI,
                audit=audit,
                lockout=lockout,
                hasher=hasher,
            )
        finally:
            link.close()
    finally:
        store.close()


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"
