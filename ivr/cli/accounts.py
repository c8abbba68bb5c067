"""``ivr accounts``: import accounts from CSV, show one, set its PIN, delete it, lift a
lockout.

Every failure prints exactly one ``error: ...`` line on stderr and exits with status 1;
operators script these commands, so there are no tracebacks and no partial imports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ivr.cli import account_cleanup, importing
from ivr.cli.errors import EXPECTED_ERRORS, fail, one_line_errors
from ivr.cli.settings import pass_settings
from ivr.cli.unlocking import lockout_tools, open_store
from ivr.config import Settings
from ivr.exceptions import AccountNotFound
from ivr.pin_policy import generate as generate_pin
from ivr.store.account_admin import AccountAdmin


@click.group("accounts")
def accounts() -> None:
    """Manage the accounts in the PIN store."""


@accounts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows and report the bad ones (default: write nothing).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="The file is the full truth: delete every account it does not list (refused "
    "if any row is bad).",
)
@click.option("--dry-run", is_flag=True, help="Check the file and print what would change.")
@pass_settings
def import_accounts(
    settings: Settings, file: Path, skip_invalid: bool, prune: bool, dry_run: bool
) -> None:
    """Create or update the accounts in FILE (customer_number and any of name, phones,
    pin). Every bad row is reported (line and reason, never the PIN); nothing is
    written unless --skip-invalid. --prune deletes the accounts FILE does not list;
    --dry-run writes nothing and prints what would be created, updated, left unchanged
    and deleted."""
    parsed = importing.read_rows(settings, file)
    importing.check_rows(file, parsed, skip_invalid=skip_invalid, prune=prune)
    rows = parsed.rows
    with one_line_errors():
        store = open_store(settings)
        try:
            if dry_run:
                click.echo(importing.dry_run(store, file, rows, prune=prune))
                return
            click.echo(importing.write(store, file, rows))
            if prune:
                for line in importing.prune(settings, store, file, rows):
                    click.echo(line)
        finally:
            store.close()


@accounts.command("show")
@click.argument("customer_number")
@pass_settings
def show_account(settings: Settings, customer_number: str) -> None:
    """Show the account CUSTOMER_NUMBER: name, phones, whether a PIN is set (never the PIN)."""
    with one_line_errors(), _admin(settings) as admin:
        found = admin.details(customer_number)
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
    stdin (--stdin, for scripts), or generated (--generate). Weak PINs are refused. A new
    PIN lifts the account's lockout."""
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
    with one_line_errors(), _admin(settings) as admin:
        admin.set_pin(customer_number, pin)
    click.echo(f"set the PIN of account {customer_number}")
    if generate:
        click.echo(f"new PIN: {pin}  (shown once; it is stored only as a keyed hash)")
    # As the provisioning API does: the guesses counted were against the old PIN.
    if not settings.redis.url:
        return
    try:
        cleared, _ = _unlock(settings, customer_number)
    except EXPECTED_ERRORS as exc:
        fail(f"the PIN of account {customer_number} is set, but its lockout was not lifted: "
             f"{exc} (run: ivr accounts unlock {customer_number})")  # fmt: skip
    if cleared:
        click.echo(f"lifted the lockout of account {customer_number}")


@accounts.command("delete")
@click.argument("customer_number")
@pass_settings
def delete_account(settings: Settings, customer_number: str) -> None:
    """Delete the account CUSTOMER_NUMBER and clear its lockout (first, so a failure
    leaves the account in place; run the command again)."""
    cleared = False

    def clean_up(number: str) -> None:
        nonlocal cleared
        cleared = account_cleanup.clean_up_deleted_account(cleanup, number)

    with one_line_errors():
        store = open_store(settings)
        try:
            if store.get(customer_number) is None:
                raise AccountNotFound(f"no account with customer number {customer_number}")
            try:
                with account_cleanup.open_cleanup(settings) as cleanup:
                    deleted = store.delete_many([customer_number], clean_up)
            except EXPECTED_ERRORS as exc:
                fail(f"account {customer_number} was not deleted: {exc} (run the command again)")
        finally:
            store.close()
    if not deleted:
        fail(f"no account with customer number {customer_number}")
    if cleared:
        click.echo(f"cleared the lockout of account {customer_number}")
    click.echo(f"deleted account {customer_number}")


@accounts.command("unlock")
@click.argument("customer_number")
@pass_settings
def unlock_account(settings: Settings, customer_number: str) -> None:
    """Lift the lockout of CUSTOMER_NUMBER so PIN entry works again at once, and the
    blocks of its phone numbers (a blocked caller number refuses the right PIN too)."""
    with one_line_errors():
        cleared, callers = _unlock(settings, customer_number, with_phones=True)
    if cleared:
        click.echo(f"unlocked account {customer_number}")
    else:
        click.echo(f"account {customer_number} had no lockout or failed attempts")
    for number in callers:
        click.echo(f"unlocked caller {number} (a phone of the account)")


@contextmanager
def _admin(settings: Settings) -> Iterator[AccountAdmin]:
    """Single-account operations on the PIN store of ``settings``, closed afterwards."""
    store = open_store(settings)
    try:
        yield AccountAdmin(store.engine, store.hasher)
    finally:
        store.close()


def _unlock(
    settings: Settings, customer_number: str, *, with_phones: bool = False
) -> tuple[bool, list[str]]:
    """Audit, then clear the account's lockout counters (:mod:`ivr.unlock`); with
    ``with_phones`` also the blocks of its phone numbers. Whether the account had any,
    and the phone numbers whose block was lifted."""
    with lockout_tools(settings) as tools:
        cleared = tools.unlocker.account(customer_number)
        if not with_phones:
            return cleared, []
        try:
            phones = (
                AccountAdmin(tools.store.engine, tools.store.hasher).details(customer_number).phones
            )
        except AccountNotFound:
            return cleared, []
        return cleared, [number for number in phones if tools.unlocker.caller(number)]
