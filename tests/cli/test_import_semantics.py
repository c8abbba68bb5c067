"""Re-imports change only what the file gives: empty cells and absent columns keep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ivr.config import Settings
from ivr.store.pins import Account
from tests.cli.helpers import assert_one_line_error
from tests.cli.test_accounts_cli import (
    GOOD_CSV,
    PEPPER,
    SECRET_PIN,
    make_settings,
    open_store,
    run,
    write,
)


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


BAD_ROWS = (
    "customer_number,name,phones,pin\n"
    f"2001,Good One,,{SECRET_PIN}\n"
    "2002,Weak,,123456\n"
    "20x3,Bad Number,,482913\n"
    f"2004,Good Two,,{SECRET_PIN}\n"
    "2005,Bad Phone,12,482913\n"
)


def test_every_bad_row_is_reported_and_nothing_written(tmp_path: Path) -> None:
    """Each bad row gets an error line with its line number (never a PIN), then one
    summary line; no account is written."""
    settings = make_settings(tmp_path)
    result = run(settings, "import", str(write(tmp_path, BAD_ROWS)))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(" line ")[1].split(":")[0] for line in lines[:-1]] == ["3", "4", "6"]
    assert "3 bad row(s), nothing imported" in lines[-1]
    assert "123456" not in result.stderr and "482913" not in result.stderr
    store = open_store(settings)
    try:
        assert store.count() == 0
    finally:
        store.close()


def test_skip_invalid_imports_the_good_rows(tmp_path: Path) -> None:
    """--skip-invalid writes the good rows and lists the skipped ones."""
    settings = make_settings(tmp_path)
    result = run(settings, "import", "--skip-invalid", str(write(tmp_path, BAD_ROWS)))
    assert result.exit_code == 0, result.output
    assert "imported 2 accounts" in result.stdout
    assert result.stderr.count("skipped: ") == 3
    store = open_store(settings)
    try:
        assert store.count() == 2
        assert store.check_pin("2004", SECRET_PIN) == Account("2004", "Good Two")
    finally:
        store.close()


def run_in_terminal(settings_file: Path, csv: Path) -> tuple[int, str]:
    """``ivr accounts import`` with stderr on a pseudo-terminal: exit status, and what
    the terminal showed."""
    main, side = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    ivr = Path(sys.executable).with_name("ivr")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(ivr), "--config", str(settings_file), "accounts", "import", str(csv)],
        stdout=subprocess.DEVNULL, stderr=side, env=env,
    )  # fmt: skip
    os.close(side)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the other side closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return proc.wait(timeout=60), shown.decode(errors="replace")


def test_progress_shows_on_a_terminal_only(tmp_path: Path) -> None:
    """On a terminal the import shows a progress bar with the rows done and their rate;
    piped (the tests above) it prints nothing but its result."""
    config = tmp_path / "ivr.toml"
    config.write_text(f'[pin_store]\nurl = "sqlite:///{tmp_path / "p.db"}"\n'
                      f'pepper = "{PEPPER}"\n[routing]\nnumber = "+4930123456"\n',
                      encoding="utf-8")  # fmt: skip
    rows = "".join(f"{3000 + i},Kunde {i},,{SECRET_PIN}\n" for i in range(2500))
    status, shown = run_in_terminal(config, write(tmp_path, "customer_number,name,phones,pin\n"
                                                             + rows))  # fmt: skip
    assert status == 0, shown
    assert "importing" in shown and "2500/2500" in shown and "rows/s" in shown
