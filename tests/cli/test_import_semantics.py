"""Re-imports change only what the file gives: empty cells and absent columns keep."""

from __future__ import annotations

from pathlib import Path

from ivr.config import Settings
from ivr.store.pins import Account
from tests.cli.helpers import assert_one_line_error
from tests.cli.test_accounts_cli import GOOD_CSV, SECRET_PIN, make_settings, open_store, run, write


def imported(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    assert run(settings, "import", str(write(tmp_path, GOOD_CSV))).exit_code == 0
    return settings


def test_resetting_a_pin_keeps_the_phones(tmp_path: Path) -> None:
    """A row with an empty phones cell sets the PIN and keeps the phones (it deleted
    them before)."""
    settings = imported(tmp_path)
    csv = write(tmp_path, f"customer_number,name,phones,pin\n1001,Erika Mustermann,,{SECRET_PIN}\n",
                "reset.csv")  # fmt: skip
    assert run(settings, "import", str(csv)).exit_code == 0
    store = open_store(settings)
    try:
        assert store.check_pin("1001", SECRET_PIN) == Account("1001", "Erika Mustermann")
        assert store.accounts_for_phone("+4930123456") == ["1001"]
    finally:
        store.close()


def test_only_the_columns_given_change_and_the_marker_clears(tmp_path: Path) -> None:
    """A file with customer_number and phones only replaces phones ("-": none) and keeps
    names and PINs."""
    settings = imported(tmp_path)
    csv = write(tmp_path, "phones,customer_number\n-,1001\n030 999999,1002\n", "phones.csv")
    result = run(settings, "import", str(csv))
    assert result.exit_code == 0, result.output
    assert "0 created, 2 updated" in result.output
    store = open_store(settings)
    try:
        assert store.accounts_for_phone("+4930123456") == []
        assert store.accounts_for_phone("+4930999999") == ["1002"]
        assert store.check_pin("1001", "482913") == Account("1001", "Erika Mustermann")
        assert store.check_pin("1002", "582716") == Account("1002", "Max Mustermann")
    finally:
        store.close()


def test_a_new_account_needs_a_name_and_nothing_is_written(tmp_path: Path) -> None:
    """A row for an unknown customer number without a name fails the import with its
    line before anything is written."""
    settings = imported(tmp_path)
    csv = write(tmp_path, f"customer_number,pin\n1001,{SECRET_PIN}\n1003,{SECRET_PIN}\n", "n.csv")
    assert_one_line_error(run(settings, "import", str(csv)), f"{csv} line 3:", "name is required")
    store = open_store(settings)
    try:
        assert store.check_pin("1001", SECRET_PIN) is None  # line 2 was not written either
        assert store.count() == 2
    finally:
        store.close()
