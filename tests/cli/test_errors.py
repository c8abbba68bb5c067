"""``ivr.cli.errors``: the one-line failure every ``ivr`` command reports."""

from __future__ import annotations

import click
from click.testing import CliRunner

from ivr.cli.errors import fail, one_line_errors
from ivr.exceptions import DependencyError
from tests.cli.helpers import assert_one_line_error


@click.command()
@click.argument("what")
def command(what: str) -> None:
    """Fails the way WHAT says."""
    if what == "fail":
        fail("first line\n  second   line", status=3)
    with one_line_errors():
        if what == "expected":
            raise DependencyError("redis unreachable:\nConnection refused")
        if what == "empty":
            raise OSError
        raise KeyError(what)


def test_fail_prints_one_line_and_exits_with_the_status() -> None:
    """fail() folds a multi-line message into one ``error:`` line and exits with ``status``."""
    result = CliRunner().invoke(command, ["fail"])
    assert_one_line_error(result, "error: first line second line", status=3)


def test_expected_errors_become_one_line() -> None:
    """An expected failure inside one_line_errors() is one line and exit status 1."""
    result = CliRunner().invoke(command, ["expected"])
    assert_one_line_error(result, "redis unreachable: Connection refused")


def test_an_error_without_a_message_is_named() -> None:
    """An expected failure without a message is reported by its type's name."""
    assert_one_line_error(CliRunner().invoke(command, ["empty"]), "error: OSError")


def test_unexpected_errors_keep_their_traceback() -> None:
    """Anything else is a bug: one_line_errors() lets it through unchanged."""
    result = CliRunner().invoke(command, ["bug"])
    assert isinstance(result.exception, KeyError) and result.exit_code == 1
    assert "error:" not in result.stderr
