"""``ivr call`` typed into on a real pseudo-terminal, one key at a time."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from ivr.cli.call import EXIT_NO_AGENT
from ivr.config import Settings
from tests.cli.test_call import config_text, serve
from tests.conftest import ACCOUNTS, SINGLE_OWNER

PIN = ACCOUNTS[0][3]


class Terminal:
    """A child process on a pty: read what it prints, type keys into it."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True
        )
        os.close(slave)
        self.screen = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.screen += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def expect(self, text: str, timeout: float = 20.0) -> None:
        """Wait (bounded) until ``text`` has been printed."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} not shown:\n{self.screen}"
            assert self._read(0.2) or text in self.screen, self.screen

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 20.0) -> int:
        """Read until the child exits; its exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.05):
            pass
        os.close(self.master)
        return self.proc.wait(timeout=5)


@pytest.fixture
def terminal(app: Flask, settings: Settings, tmp_path: Path) -> Iterator[Terminal]:
    """`ivr call` on a pty, calling the app under test from the single-owner number."""
    conf = tmp_path / "ivr.toml"
    conf.write_text(config_text(settings))
    ivr = str(Path(sys.executable).with_name("ivr"))
    for url in serve(app):
        argv = [ivr, "--config", str(conf), "call", "--url", url, "--from", SINGLE_OWNER]
        term = Terminal(argv, tmp_path)
        yield term
        if term.proc.poll() is None:
            term.proc.kill()
            term.finish()


def test_typed_keys_reach_an_agent_identified(terminal: Terminal) -> None:
    """Keys typed one by one answer each Gather as soon as numDigits is reached."""
    terminal.expect("Gather numDigits=1")
    terminal.type("1")
    terminal.expect("Gather numDigits=6")
    terminal.type(PIN)
    assert terminal.finish() == 0, terminal.screen
    assert "Reached an agent: IDENTIFIED" in terminal.screen
    assert '"identified": true' in terminal.screen


def test_enter_ends_input_early_and_q_hangs_up(terminal: Terminal) -> None:
    """Enter submits what was typed (like a timeout); q hangs up without an agent."""
    terminal.expect("Gather numDigits=1")
    terminal.type("1")
    terminal.expect("Gather numDigits=6")
    terminal.type("12\r")
    terminal.expect("ungültig")  # the short PIN was posted and judged invalid
    terminal.type("q")
    assert terminal.finish() == EXIT_NO_AGENT, terminal.screen
    assert "(caller hangs up)" in terminal.screen
