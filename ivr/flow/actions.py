"""What the flow engine asks the telephony layer to do: frozen values, no I/O.

Only :mod:`ivr.twiml` turns these into TwiML.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reason(str, Enum):
    """Why a call was routed the way it was; shown on the agent's screen-pop."""

    VERIFIED = "verified"
    WRONG_PIN = "wrong_pin"
    LOCKED = "locked"
    NO_INPUT = "no_input"
    NOT_REQUIRED = "not_required"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Say:
    """Speak ``text`` in ``language`` (a BCP-47 tag such as ``de-DE``), optionally in ``voice``."""

    text: str
    language: str
    voice: str | None = None


@dataclass(frozen=True)
class Gather:
    """Collect keypad digits for ``node`` while speaking ``prompts`` (barge-in).

    ``seq`` is the call's step counter: the digits come back tagged with it so a
    replayed or out-of-order request is recognised.
    """

    node: str
    seq: int
    language: str
    prompts: tuple[Say, ...]
    num_digits: int | None = None
    finish_on_key: str | None = None
    timeout_s: int = 6


@dataclass(frozen=True)
class Pause:
    """Silence for ``seconds``."""

    seconds: int


@dataclass(frozen=True)
class ScreenPop:
    """What the agent sees about a call (SPEC §4). Never contains the PIN."""

    call_sid: str
    caller: str | None
    identified: bool
    reason: Reason | None
    topic: str | None
    language: str
    customer_number: str | None
    name: str | None
    claimed_customer_number: str | None
    attempts: int
    verified_at: str | None
    # The caller typed a customer number that no account has (kept only as a keyed hash).
    claimed_unknown: bool = False

    def to_json(self) -> dict[str, object]:
        """The screen-pop as the JSON object of SPEC §4."""
        return {
            "call_sid": self.call_sid,
            "caller": self.caller,
            "identified": self.identified,
            "reason": self.reason.value if self.reason else None,
            "topic": self.topic,
            "language": self.language,
            "customer_number": self.customer_number,
            "name": self.name,
            "claimed_customer_number": self.claimed_customer_number,
            "claimed_unknown": self.claimed_unknown,
            "attempts": self.attempts,
            "verified_at": self.verified_at,
        }


@dataclass(frozen=True)
class Route:
    """Hand the call to an agent, carrying the screen-pop with it."""

    pop: ScreenPop


@dataclass(frozen=True)
class Hangup:
    """End the call."""


Action = Say | Gather | Pause | Route | Hangup
