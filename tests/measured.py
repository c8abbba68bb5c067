"""Measurements of the fleet and fault tests (failover, recovery and answer times) go
into pytest's summary, so every run's log shows them, not only a run with ``-s``.

``tests/conftest.py`` re-exports :func:`pytest_terminal_summary` as its hook."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

MEASURED: list[str] = []


def report(line: str) -> None:
    """Keep ``line`` for the summary at the end of the run."""
    MEASURED.append(line)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Print the measurements of this run's fleet and fault tests."""
    if MEASURED:
        terminalreporter.section("measurements")
        for line in MEASURED:
            terminalreporter.write_line(line)
