"""``ivr accounts show`` and ``set-pin``, and ``--help`` of every command without a config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli import cli
from ivr.cli.accounts import accounts
from ivr.config import Settings
from ivr.store.pins import Account
from tests.cli.helpers import assert_one_line_error
from tests.cli.test_accounts_cli import GOOD_CSV, SECRET_PIN, make_settings, open_store, write


def run(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(accounts, list(args), obj=settings, input=stdin)


@pytest.fixture
def imported(tmp_path: Path) -> Settings:
    """Settings whose PIN store holds the two accounts of GOOD_CSV."""
    settings = make_settings(tmp_path)
    assert run(settings, "import", str(write(tmp_path, GOOD_CSV))).exit_code == 0
    return settings


@pytest.mark.parametrize(
    "command",
    [
        ["accounts"],
        ["accounts", "import"],
        ["accounts", "show"],
        ["accounts", "set-pin"],
        ["audit"],
        ["audit", "export"],
        ["worker"],
    ],  # fmt: skip
)
def test_help_needs_no_config(command: list[str]) -> None:
    """--help of every command works with no config and no secrets in the environment."""
    env = {"IVR_CONFIG": None, "TWILIO_AUTH_TOKEN": None, "IVR_PIN_PEPPER": None}
    result = CliRunner().invoke(cli, [*command, "--help"], env=env)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_show_never_shows_pin_material(imported: Settings) -> None:
    """show prints name, phones and that a PIN is set, and nothing of the PIN or hash."""
    result = run(imported, "show", "1001")
    assert result.exit_code == 0, result.output
    assert "Erika Mustermann" in result.output
    assert "+4915112345678, +4930123456" in result.output
    assert "pin              set" in result.output
    assert "482913" not in result.output and "k1" not in result.output


def test_show_unknown_account(imported: Settings) -> None:
    """An unknown customer number is a one-line error."""
    assert_one_line_error(run(imported, "show", "999"), "no account", "999")


def test_set_pin_from_stdin(imported: Settings) -> None:
    """--stdin sets the PIN: the new one verifies, the old one no longer does."""
    result = run(imported, "set-pin", "1001", "--stdin", stdin=f"{SECRET_PIN}\n")
    assert result.exit_code == 0, result.output
    assert SECRET_PIN not in result.output
    store = open_store(imported)
    try:
        assert store.check_pin("1001", SECRET_PIN) == Account("1001", "Erika Mustermann")
        assert store.check_pin("1001", "482913") is None
        assert store.accounts_for_phone("+4930123456") == ["1001"]  # phones kept
    finally:
        store.close()


def test_set_pin_prompts_twice_without_echo(imported: Settings) -> None:
    """Without options the PIN is asked twice, hidden; the PIN is never echoed."""
    result = run(imported, "set-pin", "1002", stdin=f"{SECRET_PIN}\n{SECRET_PIN}\n")
    assert result.exit_code == 0, result.output
    assert SECRET_PIN not in result.output
    store = open_store(imported)
    try:
        assert store.check_pin("1002", SECRET_PIN) is not None
    finally:
        store.close()


def test_generated_pin_is_printed_once_and_verifies(imported: Settings) -> None:
    """--generate prints a new PIN once; it passes the policy and verifies."""
    result = run(imported, "set-pin", "1001", "--generate")
    assert result.exit_code == 0, result.output
    pin = result.output.split("new PIN: ")[1].split()[0]
    assert imported.pin_policy().problem(pin) is None
    store = open_store(imported)
    try:
        assert store.check_pin("1001", pin) is not None
    finally:
        store.close()


@pytest.mark.parametrize(("pin", "rule"), [("123456", "sequence"), ("000000", "same")])
def test_set_pin_refuses_a_weak_pin(imported: Settings, pin: str, rule: str) -> None:
    """A weak PIN is refused naming the rule, not the PIN; the old PIN stays."""
    result = run(imported, "set-pin", "1001", "--stdin", stdin=f"{pin}\n")
    assert_one_line_error(result, f"rule: {rule}")
    assert pin not in result.stderr
    store = open_store(imported)
    try:
        assert store.check_pin("1001", "482913") is not None
    finally:
        store.close()


def test_set_pin_of_unknown_account(imported: Settings) -> None:
    """Setting the PIN of an account that does not exist is a one-line error."""
    result = run(imported, "set-pin", "999", "--stdin", stdin=f"{SECRET_PIN}\n")
    assert_one_line_error(result, "no account", "999")
