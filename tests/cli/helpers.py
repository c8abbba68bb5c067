"""What the CLI tests share: the check that a command failed the way operators expect."""

from __future__ import annotations

from click.testing import Result


def assert_one_line_error(result: Result, *needles: str, status: int = 1) -> None:
    """``result`` exited with ``status`` after exactly one ``error: ...`` line on stderr.

    The line contains every one of ``needles``; there is no traceback anywhere.
    """
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
