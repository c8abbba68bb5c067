"""``ivr accounts``: import accounts from CSV, show one, set its PIN, delete it, lift a
lockout.

Every failure prints exactly one ``error: ...`` line on stderr and exits with status 1;
operators script these commands, so there are no tracebacks and no partial imports.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from ivr import unlock
from ivr.cli.errors import EXPECTED_ERRORS, fail, one_line_errors
from ivr.cli.settings import pass_settings
from ivr.config import Settings
from ivr.exceptions import ConfigError, ImportRowError
from ivr.pin_policy import generate as generate_pin
from ivr.store.account_admin import AccountAdmin
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
@pass_settings
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


@accounts.command("show")
@click.argument("customer_number")
@pass_settings
def show_account(settings: Settings, customer_number: str) -> None:
    """Show the account CUSTOMER_NUMBER: name, phones, whether a PIN is set (never the PIN)."""
    with one_line_errors():
        store = _open_store(settings)
        try:
            found = AccountAdmin(store.engine, store.hasher).details(customer_number)
        finally:
            store.close()
    click.echo(f"customer_number  {found.customer_number}")
    click.echo(f"name             {found.name}")
    click.echo(f"phones           {', '.join(found.phones) or '-'}")
    click.echo(f"pin              {'set' if found.pin_set else 'not set'}")
    click.echo(f"updated_at       {found.updated_at.isoformat(timespec='seconds')}")


@accounts.command("set-pin")
@click.argument("customer_number")
@click.option("--generate", is_flag=True, help="Set a random PIN and print it once.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the PIN from standard input.")
@pass_settings
def set_pin(settings: Settings, customer_number: str, generate: bool, from_stdin: bool) -> None:
    """Set the Service-PIN of CUSTOMER_NUMBER: asked for without echo (twice), read from
    stdin (--stdin, for scripts), or generated (--generate). Weak PINs are refused."""
    if generate and from_stdin:
        fail("choose one of --generate and --stdin")
    policy = settings.pin_policy()
    if generate:
        pin = generate_pin(policy)
    elif from_stdin:
        pin = sys.stdin.readline().strip()
    else:
        entered = click.prompt("New PIN", hide_input=True, confirmation_prompt=True, type=str)
        pin = str(entered).strip()
    problem = policy.problem(pin)
    if problem is not None:
        fail(problem)  # names the rule, never the PIN
    with one_line_errors():
        store = _open_store(settings)
        try:
            AccountAdmin(store.engine, store.hasher).set_pin(customer_number, pin)
        finally:
            store.close()
    click.echo(f"set the PIN of account {customer_number}")
    if generate:
        click.echo(f"new PIN: {pin}  (shown once; it is stored only as a keyed hash)")


@accounts.command("delete")
@click.argument("customer_number")
@pass_settings
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
@pass_settings
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
