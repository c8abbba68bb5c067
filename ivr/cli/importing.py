"""The steps of ``ivr accounts import``: read and check the file, write it (or only count
what it would do, ``--dry-run``), and with ``--prune`` delete the accounts it does not
list.

``--prune`` makes the file the full truth, so it refuses a file that could delete an
account by mistake: any bad row (also with ``--skip-invalid``: a skipped row's account
would otherwise be deleted, and a bad customer number cannot even be told apart), and a
file without any account. Deleting runs after the writes, in short transactions, each
account cleaned up first (:mod:`ivr.cli.account_cleanup`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import click

from ivr.cli import account_cleanup
from ivr.cli.errors import EXPECTED_ERRORS, fail
from ivr.config import Settings
from ivr.exceptions import ImportRowError
from ivr.store.account_import import ImportReport
from ivr.store.accounts_csv import ImportRow, ParsedFile, read_accounts
from ivr.store.pins import PinStore

# Bad rows listed one per line, up to this many; the rest are counted.
MAX_REPORTED = 50
T = TypeVar("T")


def read_rows(settings: Settings, file: Path) -> ParsedFile:
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


def check_rows(file: Path, parsed: ParsedFile, *, skip_invalid: bool, prune: bool) -> None:
    """Report the bad rows; exit 1 unless they may be skipped. With ``prune`` nothing may
    be skipped, and a file without accounts is refused."""
    errors = parsed.errors
    if prune and errors:
        _list_bad_rows(file, errors, "error")
        fail(f"{file}: {len(errors)} bad row(s); --prune needs a file without bad rows "
             "(an account on a bad row would be deleted): nothing imported, nothing "
             "deleted")  # fmt: skip
    if prune and not parsed.rows:
        fail(f"{file} lists no accounts; --prune would delete every account (refused)")
    if not errors:
        return
    if not skip_invalid and len(errors) == 1:
        fail(f"{file} {errors[0]}")  # "FILE line 7: ..."
    _list_bad_rows(file, errors, "skipped" if skip_invalid else "error")
    if not skip_invalid:
        fail(f"{file}: {len(errors)} bad row(s), nothing imported (--skip-invalid imports "
             "the others)")  # fmt: skip


def _list_bad_rows(file: Path, errors: list[ImportRowError], prefix: str) -> None:
    """One line per bad row (at most MAX_REPORTED, then a count) on stderr."""
    for exc in errors[:MAX_REPORTED]:
        click.echo(f"{prefix}: {file} {exc}", err=True)
    if len(errors) > MAX_REPORTED:
        click.echo(f"{prefix}: … and {len(errors) - MAX_REPORTED} more bad rows", err=True)


def dry_run(store: PinStore, file: Path, rows: list[ImportRow], *, prune: bool) -> str:
    """What the import would do, as one line; nothing is written."""
    try:
        report = store.count_changes(rows)
    except ImportRowError as exc:  # a new account without a name
        fail(f"{file} {exc}")
    missing = len(store.unlisted({row.customer_number for row in rows}))
    counts = (f"would create {report.created}, update {report.updated}, leave "
              f"{report.unchanged} unchanged")  # fmt: skip
    if prune:
        counts += f", delete {missing} (not in the file)"
    else:
        counts += f"; {missing} stored account(s) not in the file (--prune would delete them)"
    return f"dry run, nothing written: {len(rows)} accounts in {file}: {counts}"


def write(store: PinStore, file: Path, rows: list[ImportRow]) -> str:
    """Create or update ``rows`` (a progress bar on a terminal); the result line."""
    try:
        report: ImportReport = _with_progress(
            "importing", len(rows), lambda step: store.upsert_many(rows, progress=step)
        )
    except ImportRowError as exc:  # a new account without a name: nothing written
        fail(f"{file} {exc}")
    return (f"imported {len(rows)} accounts ({report.created} created, {report.updated} "
            f"updated, {report.unchanged} unchanged)")  # fmt: skip


def prune(settings: Settings, store: PinStore, file: Path, rows: list[ImportRow]) -> list[str]:
    """Delete every account not in ``rows``, each cleaned up first; the result lines."""
    doomed = store.unlisted({row.customer_number for row in rows})
    if not doomed:
        return [f"deleted no accounts (all are in {file})"]
    cleared = done = 0

    def clean_up(number: str) -> None:
        nonlocal cleared
        cleared += account_cleanup.clean_up_deleted_account(cleanup, number)

    def work(bar: Callable[[int], Any]) -> int:
        def step(count: int) -> None:
            nonlocal done
            done = count
            bar(count)

        return store.delete_many(doomed, clean_up, progress=step)

    try:
        with account_cleanup.open_cleanup(settings) as cleanup:
            deleted = _with_progress("deleting", len(doomed), work)
    except EXPECTED_ERRORS as exc:
        fail(f"pruning stopped after deleting {done} of the {len(doomed)} accounts not in "
             f"{file}: {exc} (the rest are kept; run the import again to finish)")  # fmt: skip
    lines = [f"deleted {deleted} account(s) not in {file}"]
    if cleared:
        lines.append(f"cleared the lockout of {cleared} deleted account(s)")
    return lines


def _with_progress(label: str, total: int, work: Callable[[Callable[[int], Any]], T]) -> T:
    """``work(step)``, where ``step(done)`` moves a progress bar (rows, rows/s, ETA) on
    stderr when it is a terminal; quiet when piped or logged."""
    bar: AbstractContextManager[Any] = nullcontext()
    if sys.stderr.isatty():
        bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                                show_eta=True, item_show_func=lambda rate: rate)  # fmt: skip
    started = time.monotonic()
    with bar as shown:
        if shown is None:
            return work(lambda done: None)

        def step(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            shown.update(done - shown.pos, f"{rate:,.0f} rows/s")

        return work(step)
