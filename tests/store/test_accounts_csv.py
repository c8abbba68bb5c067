"""Accounts CSV parsing: validation, line numbers, and PINs kept out of errors."""

from __future__ import annotations

import io

import pytest

from ivr.exceptions import ImportRowError
from ivr.pin_policy import PinPolicy
from ivr.store.accounts_csv import ImportRow, parse_accounts

HEADER = "customer_number,name,phones,pin\n"
SECRET_PIN = "739201"


# Only the PIN's format is checked here; the weak-PIN rules have tests of their own.
def format_only(pin_length: int = 6) -> PinPolicy:
    return PinPolicy(pin_length, rules=frozenset())


def parse(text: str, pin_length: int = 6) -> list[ImportRow]:
    return parse_accounts(io.StringIO(text), policy=format_only(pin_length), default_region="DE")


def error_of(text: str) -> ImportRowError:
    with pytest.raises(ImportRowError) as info:
        parse(text)
    return info.value


def test_good_file() -> None:
    """A valid file yields one row per account with E.164 phones and the line number."""
    rows = parse(
        HEADER
        + "1001,Erika Mustermann,0151 12345678;+49 30 123456,123456\n"
        + "\n"
        + '1002,"Muster, Max",,654321\n'
        + "1003,Anna,+4915112345678;;0151-12345678;,000000\n"
    )
    assert [r.customer_number for r in rows] == ["1001", "1002", "1003"]
    assert rows[0].phones == ("+4915112345678", "+4930123456")
    assert rows[0].line == 2 and rows[1].line == 4
    assert rows[1].name == "Muster, Max" and rows[1].phones is None  # empty: unchanged
    assert rows[2].phones == ("+4915112345678",)  # duplicates in one row collapse
    assert rows[2].pin == "000000"


def test_repr_hides_the_pin() -> None:
    """An ImportRow's repr (as in logs and tracebacks) never shows the PIN."""
    (row,) = parse(HEADER + f"1001,Erika,,{SECRET_PIN}\n")
    assert SECRET_PIN not in repr(row)


def test_default_region_applies_to_national_numbers() -> None:
    """National numbers are read in the given default region."""
    rows = parse_accounts(
        io.StringIO(HEADER + "1,A,(415) 555-2671,123456\n"),
        policy=format_only(),
        default_region="US",
    )
    assert rows[0].phones == ("+14155552671",)


def test_byte_order_mark_and_padded_header_accepted() -> None:
    """A BOM and blanks around header cells, as spreadsheets write them, are fine."""
    rows = parse("\ufeffcustomer_number, name ,phones,pin\n1001,A,,123456\n")
    assert len(rows) == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "customer_number,name,pin,pin\n",
        "number,name,phones,pin\n1,A,,123456\n",
        "name,pin\nA,739201\n",
        "customer_number,email\n1,a@b\n",
    ],
)
def test_wrong_header_is_line_1(text: str) -> None:
    """A missing or different header is reported on line 1."""
    err = error_of(text)
    assert err.line == 1 and "header" in str(err)


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (f"12a4,Erika,,{SECRET_PIN}", "customer_number"),
        (f",Erika,,{SECRET_PIN}", "customer_number"),
        (f"1234567890123,Erika,,{SECRET_PIN}", "customer_number"),
        (f"１２３,Erika,,{SECRET_PIN}", "customer_number"),  # full-width digits
        (f"1234,{'x' * 201},,{SECRET_PIN}", "name"),
        (f"1234,Erika,0151 12345678;12,{SECRET_PIN}", "phone 2"),
        ("1234,Erika,,12345", "pin"),
        ("1234,Erika,,1234567", "pin"),
        ("1234,Erika,,12345a", "pin"),
        (f"1234,Erika,{SECRET_PIN}", "fields"),
        (f"1234,Erika,,{SECRET_PIN},extra", "fields"),
    ],
)
def test_bad_row_reports_its_line_and_never_the_pin(row: str, needle: str) -> None:
    """Each kind of bad row names its line and the problem, never the PIN value."""
    text = HEADER + f"1000,Good,,{SECRET_PIN}\n\n" + row + "\n" + "1001,Later,,111111\n"
    err = error_of(text)
    assert err.line == 4
    assert needle in str(err)
    assert SECRET_PIN not in str(err)
    for bad_pin in ("12345", "1234567", "12345a"):
        assert bad_pin not in str(err)


def test_duplicate_customer_number() -> None:
    """A customer number used twice is reported on its second line, naming the first."""
    err = error_of(HEADER + f"1001,A,,{SECRET_PIN}\n1002,B,,111111\n1001,C,,{SECRET_PIN}\n")
    assert err.line == 4
    assert "line 2" in str(err) and SECRET_PIN not in str(err)


def test_pin_equal_to_an_echoed_value_is_masked() -> None:
    """Even when the PIN equals a value that is echoed, the message masks it."""
    err = error_of(HEADER + "123456,A,,123456\n123456,B,,123456\n")
    assert "123456" not in str(err)
    err = error_of(HEADER + "1001,A,000000,000000\n")
    assert "phone 1" in str(err) and "000000" not in str(err)


def test_multiline_quoted_field_keeps_start_line() -> None:
    """A record spanning lines is reported on the line where it starts."""
    err = error_of(HEADER + '1001,"Erika\nMustermann",,12\n')
    assert err.line == 2


def test_broken_csv_is_a_row_error() -> None:
    """Malformed CSV (here an unterminated quote) is an ImportRowError, not a crash."""
    err = error_of(HEADER + '1001,"Erika,,123456\n')
    assert err.line >= 2 and "CSV" in str(err)


def test_first_error_wins() -> None:
    """Validation stops at the first bad row."""
    err = error_of(HEADER + "x,A,,123456\ny,B,,123456\n")
    assert err.line == 2


@pytest.mark.parametrize(
    ("pin", "rule"), [("111111", "same"), ("234567", "sequence"), ("147258", "common")]
)
def test_a_weak_pin_is_refused_naming_line_and_rule(pin: str, rule: str) -> None:
    """With the default policy, a weak PIN fails its row with the rule's name and
    without the PIN in the message."""
    text = HEADER + f"1001,A,,{SECRET_PIN}\n1002,B,,{pin}\n"
    with pytest.raises(ImportRowError) as info:
        parse_accounts(io.StringIO(text), policy=PinPolicy(6), default_region="DE")
    assert info.value.line == 3 and f"rule: {rule}" in str(info.value)
    assert pin not in str(info.value)


def test_columns_in_any_order_and_only_some() -> None:
    """The header names the columns given, in any order; absent columns are unchanged."""
    rows = parse("pin,customer_number\n739201,1001\n")
    assert (rows[0].customer_number, rows[0].name, rows[0].phones) == ("1001", None, None)
    assert rows[0].pin == "739201"


def test_empty_cells_keep_and_the_marker_clears() -> None:
    """An empty cell leaves a field unchanged; "-" removes the phones or the PIN."""
    keep, clear = parse(HEADER + "1001,,,\n1002,Max,-,-\n")
    assert (keep.name, keep.phones, keep.pin) == (None, None, None)
    assert (clear.name, clear.phones, clear.pin) == ("Max", (), "")
