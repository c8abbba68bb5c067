"""Parse and validate an accounts CSV (``customer_number,name,phones,pin``).

The whole file is validated before anything is written, so an import is all or nothing.
Error messages name the line and the problem but never echo the PIN cell.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn, TextIO

from ivr import phone
from ivr.exceptions import ImportRowError
from ivr.pin_policy import PinPolicy

HEADER = ("customer_number", "name", "phones", "pin")
MAX_NAME_CHARS = 200
# Customer numbers are typed on a keypad, so: ASCII digits only, at most 12 of them.
_CUSTOMER_NUMBER = re.compile(r"[0-9]{1,12}")
_MIN_REDACTED_PIN = 4


@dataclass(frozen=True)
class ImportRow:
    """One validated account from the file; ``line`` is where its record starts."""

    line: int
    customer_number: str
    name: str
    phones: tuple[str, ...]
    pin: str = field(repr=False)


def parse_accounts(
    stream: TextIO, *, policy: PinPolicy, default_region: str = "DE"
) -> list[ImportRow]:
    """Every row of ``stream``, validated (PINs against ``policy``); the first bad row
    raises ImportRowError."""
    records = _records(stream)
    first = next(records, None)
    if first is None or _clean_header(first[1]) != HEADER:
        raise ImportRowError(1, f"header must be exactly {','.join(HEADER)}")
    rows: list[ImportRow] = []
    first_seen: dict[str, int] = {}
    for line, cells in records:
        row = _parse_row(line, cells, policy, default_region)
        if row.customer_number in first_seen:
            where = first_seen[row.customer_number]
            _fail(line, f"customer_number {row.customer_number} already on line {where}", row.pin)
        first_seen[row.customer_number] = line
        rows.append(row)
    return rows


def _records(stream: TextIO) -> Iterator[tuple[int, list[str]]]:
    """``(start line, cells)`` per record, skipping blank lines.

    ``reader.line_num`` is the line a record *ends* on (quoted fields may span lines),
    so the start is one past where the previous record ended.
    """
    reader = csv.reader(stream, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportRowError(reader.line_num or start, f"not valid CSV: {exc}") from None
        end = reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def _clean_header(cells: list[str]) -> tuple[str, ...]:
    # Spreadsheets like to prepend a byte-order mark and pad cells; both are harmless.
    return tuple(cell.strip().lstrip("\ufeff").strip() for cell in cells)


def _parse_row(line: int, cells: list[str], policy: PinPolicy, region: str) -> ImportRow:
    if len(cells) != len(HEADER):
        raise ImportRowError(line, f"expected {len(HEADER)} fields, got {len(cells)}")
    number, name, phones_cell, pin = (cell.strip() for cell in cells)
    if not _CUSTOMER_NUMBER.fullmatch(number):
        _fail(line, "customer_number must be 1 to 12 digits (0-9)", pin)
    if not name:
        _fail(line, "name is empty", pin)
    if len(name) > MAX_NAME_CHARS:
        _fail(line, f"name is longer than {MAX_NAME_CHARS} characters", pin)
    weak = policy.problem(pin)
    if weak is not None:
        _fail(line, weak, pin)
    phones = _parse_phones(line, phones_cell, region, pin)
    return ImportRow(line=line, customer_number=number, name=name, phones=phones, pin=pin)


def _parse_phones(line: int, cell: str, region: str, pin: str) -> tuple[str, ...]:
    found: list[str] = []
    for position, raw in enumerate(cell.split(";"), start=1):
        if not raw.strip():
            continue  # an empty cell or a trailing ";" means "no (more) numbers"
        e164 = phone.normalize(raw, region)
        if e164 is None:
            _fail(line, f"phone {position} ({raw.strip()!r}) is not a valid phone number", pin)
        if e164 not in found:
            found.append(e164)
    return tuple(found)


def _fail(line: int, message: str, pin: str) -> NoReturn:
    """Raise ImportRowError; as a safety net, a PIN that slipped into the text is masked."""
    if len(pin) >= _MIN_REDACTED_PIN:
        message = message.replace(pin, "***")
    raise ImportRowError(line, message)
