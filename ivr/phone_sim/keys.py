"""Keys for a ``<Gather>``: Twilio's collection rule (pure) and where keys come from.

:func:`collect` is the rule: a Gather ends when ``numDigits`` keys are in, when the
``finishOnKey`` is pressed (it is not part of ``Digits``), or on timeout with whatever
was typed. A :class:`Keypad` supplies the raw keys for one Gather: from a script
(``--keys "1,123456#"``) or typed on the terminal with the Gather's timeout.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ivr.phone_sim.verbs import GatherVerb, SayVerb

DTMF = frozenset("0123456789*#")
HANGUP_KEYS = frozenset({"q", "Q", "\x04", "\x03"})  # q, Ctrl-D, Ctrl-C
SUBMIT_KEYS = frozenset({"\r", "\n"})  # Enter: stop typing now, as if the timeout ran out
WORDS_PER_SECOND = 2.5  # roughly how fast Twilio's voices speak


@dataclass(frozen=True)
class Collected:
    """What one Gather got: ``digits`` as Twilio posts them, and how it ended."""

    digits: str
    finished_on_key: str | None = None
    complete: bool = False  # numDigits reached or finishOnKey pressed (else: timeout)
    ignored: str = ""  # keys pressed after the Gather was complete


def collect(keys: str, num_digits: int | None, finish_on_key: str) -> Collected:
    """Apply Twilio's Gather rule to the keys pressed, in order."""
    typed: list[str] = []
    for i, key in enumerate(keys):
        if finish_on_key and key == finish_on_key:
            return Collected("".join(typed), key, True, keys[i + 1 :])
        typed.append(key)
        if num_digits is not None and len(typed) >= num_digits:
            return Collected("".join(typed), None, True, keys[i + 1 :])
    return Collected("".join(typed))


def parse_script(script: str) -> list[str]:
    """``"1,,123456#"`` -> one entry per Gather ("" is silence); ValueError on other keys."""
    entries = [entry.strip() for entry in script.split(",")]
    for entry in entries:
        bad = sorted(set(entry) - DTMF)
        if bad:
            raise ValueError(f"--keys may only hold 0-9, * and # per entry, got {''.join(bad)!r}")
    return entries


def speaking_time_s(gather: GatherVerb) -> float:
    """About how long the Gather's prompts take to speak; Twilio's timeout starts after."""
    words = sum(len(p.text.split()) for p in gather.prompts if isinstance(p, SayVerb))
    return words / WORDS_PER_SECOND


class Keypad(Protocol):
    """Supplies the caller's keys for one Gather; None when the caller hangs up."""

    def keys_for(self, gather: GatherVerb) -> str | None:
        """The raw keys pressed while ``gather`` listened (possibly empty: silence)."""


class ScriptedKeypad:
    """Answers each Gather with the next script entry; hangs up when the script ends."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries = list(entries)

    def keys_for(self, gather: GatherVerb) -> str | None:
        return self._entries.pop(0) if self._entries else None


class TerminalKeypad:
    """Reads single keys from a terminal (cbreak mode) with the Gather's timeouts.

    The first key may come ``timeout`` seconds after the prompt would have been spoken,
    each further key ``timeout`` seconds after the previous one, as on a real call.
    """

    def __init__(
        self, fd: int, show: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fd = fd
        self._show = show
        self._clock = clock

    def keys_for(self, gather: GatherVerb) -> str | None:
        saved = termios.tcgetattr(self._fd)
        # TCSANOW, not the default flush: keys typed during the prompt count (barge-in).
        tty.setcbreak(self._fd, termios.TCSANOW)
        try:
            return self._read(gather)
        finally:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _read(self, gather: GatherVerb) -> str | None:
        typed = ""
        deadline = self._clock() + gather.timeout_s + speaking_time_s(gather)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return typed
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return typed
            key = os.read(self._fd, 1).decode("latin-1")
            if key == "" or key in HANGUP_KEYS:
                return None
            if key in SUBMIT_KEYS:
                return typed
            if key not in DTMF:
                continue
            typed += key
            self._show(key)
            if collect(typed, gather.num_digits, gather.finish_on_key).complete:
                return typed
            deadline = self._clock() + gather.timeout_s


class LineKeypad:
    """Reads one line per Gather from a pipe (not a terminal); end of input hangs up."""

    def __init__(self, readline: Callable[[], str]) -> None:
        self._readline = readline

    def keys_for(self, gather: GatherVerb) -> str | None:
        line = self._readline()
        if not line:
            return None
        if line.strip() in HANGUP_KEYS:
            return None
        return "".join(key for key in line if key in DTMF)
