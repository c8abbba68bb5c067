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

from ivr.cli.errors import EXPECTED_ERRORS, fail, one_line_errors
from ivr.cli.settings import pass_settings
from ivr.cli.unlocking import lockout_tools, open_store
from ivr.config import Settings
from ivr.exceptions import AccountNotFound, ImportRowError
from ivr.pin_policy import generate as generate_pin
from ivr.store.account_admin import AccountAdmin
from ivr.store.account_import import ImportReport
from ivr.store.accounts_csv import ImportRow, ParsedFile, read_accounts
from ivr.store.pins import PinStore

# Bad rows listed one per line, up to this many; the rest are counted.
MAX_REPORTED = 50


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
@pass_settings
def import_accounts(settings: Settings, file: Path, skip_invalid: bool) -> None:
    """Create or update the accounts in FILE (customer_number and any of name, phones,
    pin). Every bad row is reported (line and reason, never the PIN); nothing is
    written unless --skip-invalid."""
    parsed = _read_rows(settings, file)
    _report_bad_rows(file, parsed.errors, fatal=not skip_invalid)
    rows = parsed.rows
    with one_line_errors():
        store = open_store(settings)
        try:
            report = _write_with_progress(store, rows)
        except ImportRowError as exc:  # a new account without a name: nothing written
            fail(f"{file} {exc}")
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
    with one_line_errors(), _admin(settings) as admin:
        admin.set_pin(customer_number, pin)
    click.echo(f"set the PIN of account {customer_number}")
    if generate:
        click.echo(f"new PIN: {pin}  (shown once; it is stored only as a keyed hash)")


@accounts.command("delete")
@click.argument("customer_number")
@pass_settings
def delete_account(settings: Settings, customer_number: str) -> None:
    """Delete the account CUSTOMER_NUMBER and clear its lockout."""
    with one_line_errors():
        store = open_store(settings)
        try:
            store.delete(customer_number)
        finally:
            store.close()
    click.echo(f"deleted account {customer_number}")
    # Without Redis there are no lockouts to clear; the deletion itself is complete.
    if not settings.redis.url:
        return
    try:
        cleared, _ = _unlock(settings, customer_number)
    except EXPECTED_ERRORS as exc:
        fail(f"account {customer_number} was deleted, but its lockout was not cleared: {exc}")
    if cleared:
        click.echo(f"cleared the lockout of account {customer_number}")


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


def _write_with_progress(store: PinStore, rows: list[ImportRow]) -> ImportReport:
    """Write ``rows``, with a progress bar (rows, ETA) on stderr when it is a terminal;
    quiet when piped or logged."""
    if not sys.stderr.isatty():
        return store.upsert_many(rows)
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr, show_pos=True,
                           show_eta=True) as bar:  # fmt: skip
        return store.upsert_many(rows, progress=lambda done: bar.update(done - bar.pos))


def _report_bad_rows(file: Path, errors: list[ImportRowError], *, fatal: bool) -> None:
    """One line per bad row (at most MAX_REPORTED, then a count); exit 1 when ``fatal``."""
    if not errors:
        return
    if fatal and len(errors) == 1:
        fail(f"{file} {errors[0]}")  # "FILE line 7: ..."
    prefix = "error" if fatal else "skipped"
    for exc in errors[:MAX_REPORTED]:
        click.echo(f"{prefix}: {file} {exc}", err=True)
    if len(errors) > MAX_REPORTED:
        click.echo(f"{prefix}: … and {len(errors) - MAX_REPORTED} more bad rows", err=True)
    if fatal:
        fail(f"{file}: {len(errors)} bad row(s), nothing imported (--skip-invalid imports "
             "the others)")  # fmt: skip


def _read_rows(settings: Settings, file: Path) -> ParsedFile:
    """Every row of ``file``, validated, before anything touches the database."""
    # utf-8-sig: files saved by spreadsheet programs often start with a byte-order mark.
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            return read_accounts(
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
