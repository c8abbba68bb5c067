"""Parse and validate an accounts CSV: a header naming its columns, then one row each.

The header names the columns given: ``customer_number`` and any of ``name``, ``phones``
(separated by ``;``) and ``pin``, in any order. A column left out, or an empty cell,
leaves that field of an existing account unchanged; :data:`CLEAR` (``-``) in ``phones``
or ``pin`` removes the phones or the PIN. A new account needs a name (checked against
the store before anything is written). The whole file is validated before anything is
written. Error messages name the line and the problem but never echo the PIN cell.
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
# In phones or pin: remove them (an empty cell keeps what the account has).
CLEAR = "-"
MAX_NAME_CHARS = 200
# Customer numbers are typed on a keypad, so: ASCII digits only, at most 12 of them.
CUSTOMER_NUMBER = re.compile(r"[0-9]{1,12}")
_MIN_REDACTED_PIN = 4


@dataclass(frozen=True)
class ImportRow:
    """One validated account from the file; ``line`` is where its record starts. None
    leaves a field unchanged; ``()`` phones and ``""`` pin remove them."""

    line: int
    customer_number: str
    name: str | None
    phones: tuple[str, ...] | None
    pin: str | None = field(repr=False)


@dataclass(frozen=True)
class ParsedFile:
    """The valid rows of a file and an error for each bad one, in file order."""

    rows: list[ImportRow]
    errors: list[ImportRowError]


def read_accounts(stream: TextIO, *, policy: PinPolicy, default_region: str = "DE") -> ParsedFile:
    """Every row of ``stream``, validated (PINs against ``policy``): the good ones and an
    error for each bad one. A bad header or broken CSV raises ImportRowError (nothing
    after it can be read reliably)."""
    records = _records(stream)
    first = next(records, None)
    columns = _columns(first[1] if first is not None else [])
    parsed = ParsedFile([], [])
    first_seen: dict[str, int] = {}
    for line, cells in records:
        try:
            row = _parse_row(line, cells, columns, policy, default_region)
            if row.customer_number in first_seen:
                where = first_seen[row.customer_number]
                _fail(line, f"customer_number {row.customer_number} already on line {where}",
                      row.pin or "")  # fmt: skip
        except ImportRowError as exc:
            parsed.errors.append(exc)
            continue
        first_seen[row.customer_number] = line
        parsed.rows.append(row)
    return parsed


def parse_accounts(
    stream: TextIO, *, policy: PinPolicy, default_region: str = "DE"
) -> list[ImportRow]:
    """Every row of ``stream``, validated; the first bad row raises ImportRowError."""
    parsed = read_accounts(stream, policy=policy, default_region=default_region)
    if parsed.errors:
        raise parsed.errors[0]
    return parsed.rows


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


def _columns(cells: list[str]) -> tuple[str, ...]:
    """The header's columns: customer_number and any of the others, each once."""
    names = _clean_header(cells)
    wrong = [name for name in names if name not in HEADER]
    if not names or "customer_number" not in names or wrong or len(set(names)) != len(names):
        raise ImportRowError(1, f"header must name customer_number and any of name, phones, "
                                f"pin, each once (got {','.join(names) or 'nothing'})")  # fmt: skip
    return names


def _parse_row(
    line: int, cells: list[str], columns: tuple[str, ...], policy: PinPolicy, region: str
) -> ImportRow:
    if len(cells) != len(columns):
        raise ImportRowError(line, f"expected {len(columns)} fields, got {len(cells)}")
    given = dict(zip(columns, (cell.strip() for cell in cells), strict=True))
    number, name = given["customer_number"], given.get("name") or None
    pin_cell, phones_cell = given.get("pin", ""), given.get("phones", "")
    if not CUSTOMER_NUMBER.fullmatch(number):
        _fail(line, "customer_number must be 1 to 12 digits (0-9)", pin_cell)
    if name is not None and len(name) > MAX_NAME_CHARS:
        _fail(line, f"name is longer than {MAX_NAME_CHARS} characters", pin_cell)
    pin: str | None = None  # unchanged
    if pin_cell == CLEAR:
        pin = ""
    elif pin_cell:
        weak = policy.problem(pin_cell)
        if weak is not None:
            _fail(line, weak, pin_cell)
        pin = pin_cell
    phones: tuple[str, ...] | None = None  # unchanged
    if phones_cell == CLEAR:
        phones = ()
    elif phones_cell:
        phones = _parse_phones(line, phones_cell, region, pin_cell)
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
