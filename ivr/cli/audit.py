"""``ivr audit``: export the audit trail as CSV, purge rows past retention.

CSV columns: ``at,call_sid,customer_number,caller,outcome,actor,source``. Attempt rows
have an outcome of ``verified``, ``wrong``, ``locked`` or ``unavailable`` and no actor;
unlock rows have ``unlocked``, the actor and where it happened (``cli``, ``console``…).
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import click

from ivr.cli.errors import fail, one_line_errors
from ivr.cli.settings import pass_settings
from ivr.config import Settings
from ivr.jobs import utc_iso
from ivr.store.audit import AuditRecord, AuditStore

HEADER = ("at", "call_sid", "customer_number", "caller", "outcome", "actor", "source")
# Spreadsheets run cells starting with these as formulas; such cells get a leading '.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@click.group("audit")
def audit() -> None:
    """The audit trail of PIN attempts and unlocks."""


@audit.command("export")
@click.option("--since", metavar="DATE", help="First day (or time) to export, e.g. 2026-11-01.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CSV to this file instead of standard output.",
)
@pass_settings
def export(settings: Settings, since: str | None, output: Path | None) -> None:
    """Write every audit row since --since as CSV (times in UTC)."""
    start = parse_since(since)
    with one_line_errors():
        store = _open(settings)
        try:
            if output is None:
                write_csv(sys.stdout, store.export(start))
            else:
                _write_file(output, store.export(start))
        finally:
            store.close()


@audit.command("purge")
@pass_settings
def purge(settings: Settings) -> None:
    """Delete rows older than [audit] retention_days now (the worker does this daily)."""
    cutoff = datetime.now(UTC) - timedelta(days=settings.audit.retention_days)
    with one_line_errors():
        store = _open(settings)
        try:
            removed = store.purge(cutoff)
        finally:
            store.close()
    click.echo(f"removed {removed} audit rows older than {cutoff.date().isoformat()}")


def parse_since(text: str | None) -> datetime:
    """``--since`` as a UTC time: a date means its midnight; no offset means UTC."""
    if not text:
        fail("--since is required, e.g. --since 2026-11-01")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"--since {text!r} is not a date like 2026-11-01 or an ISO 8601 time")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def write_csv(stream: TextIO, records: Iterable[AuditRecord]) -> int:
    """Write the header and one line per record; returns the number of records."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for record in records:
        writer.writerow(row(record))
        count += 1
    return count


def row(record: AuditRecord) -> list[str]:
    """One CSV line for ``record``, safe to open in a spreadsheet."""
    at = utc_iso(record.at)
    fields = (record.call_sid, record.customer_number, record.caller, record.outcome)
    return [at, *(_cell(v) for v in fields), _cell(record.actor), _cell(record.source)]


def _cell(value: str | None) -> str:
    if not value:
        return ""
    if value.startswith(FORMULA_START) and not E164.fullmatch(value):
        return "'" + value
    return value


def _write_file(path: Path, records: Iterable[AuditRecord]) -> None:
    # Written next to the target and renamed at the end: a failed export leaves no
    # half-written file behind, and an existing file is only replaced by a complete one.
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            count = write_csv(stream, records)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(f"wrote {count} audit rows to {path}", err=True)


def _open(settings: Settings) -> AuditStore:
    """The audit store in the PIN store's database, its table created if missing."""
    return AuditStore.from_url(settings.pin_store.url, settings.pin_store.timeout_s)
