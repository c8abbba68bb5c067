"""Call state, the events that move it, and the I/O the engine asks for (pure values).

The web layer stores :class:`CallState` per CallSid (never with a PIN in it), feeds
events to :func:`ivr.flow.engine.advance`, and performs each :data:`Need` it gets back,
answering with the matching result event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ivr.flow.actions import Action, Reason, ScreenPop

# A typed customer number that no account has is kept only as this mark and its keyed
# hash (:class:`CheckCustomerNumber`): a PIN typed at the wrong prompt never stays in
# clear. Customer numbers are digits, so the mark cannot be mistaken for one.
UNKNOWN_CUSTOMER = "?"


def is_unknown(customer_number: str | None) -> bool:
    """True for the mark of a typed customer number that no account has."""
    return customer_number is not None and customer_number.startswith(UNKNOWN_CUSTOMER)


class Verdict(str, Enum):
    """Result of one PIN submission after the lockout check."""

    VERIFIED = "verified"
    WRONG = "wrong"
    LOCKED = "locked"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class CallState:
    """Everything the IVR remembers about one call between webhooks."""

    call_sid: str
    caller: str | None
    language: str
    node: str
    seq: int = 0
    topic: str | None = None
    reprompts: int = 0
    attempts: int = 0
    customer_number: str | None = None
    identified: bool = False
    name: str | None = None
    reason: Reason | None = None
    verified_at: str | None = None
    routed: bool = False
    started_at: str | None = None
    # The request this state answered ("<node>:<seq>" of a Gather's answer, "voice" for
    # the call's start) and the prompts of the Gather it asked: enough to give a retried
    # request the very same answer without doing its work again.
    answered: str | None = None
    said: tuple[str | None, ...] = ()

    def screen_pop(self) -> ScreenPop:
        """The screen-pop for this call; account details only when identified."""
        claimed = None if self.identified else self.customer_number
        return ScreenPop(
            call_sid=self.call_sid,
            caller=self.caller,
            identified=self.identified,
            reason=self.reason,
            topic=self.topic,
            language=self.language,
            customer_number=self.customer_number if self.identified else None,
            name=self.name if self.identified else None,
            claimed_customer_number=None if is_unknown(claimed) else claimed,
            attempts=self.attempts,
            verified_at=self.verified_at if self.identified else None,
            claimed_unknown=is_unknown(claimed),
        )

    def evolve(self, **changes: Any) -> CallState:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-call cost.

        The engine copies the state several times per webhook; ``replace`` re-runs the
        generated ``__init__`` over every field each time, which was a visible share of
        a webhook's CPU. Field names are still checked.
        """
        unknown = changes.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"CallState has no field(s) {', '.join(sorted(unknown))}")
        copy = object.__new__(CallState)
        object.__setattr__(copy, "__dict__", {**self.__dict__, **changes})
        return copy

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for storage."""
        # Every field is a flat value: no need for asdict's recursive deep copy, which
        # was a measurable share of every webhook.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["reason"] = self.reason.value if self.reason else None
        data["said"] = list(self.said)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        if values.get("reason") is not None:
            values["reason"] = Reason(values["reason"])
        said = values.get("said", [])
        if not isinstance(said, list) or not all(p is None or isinstance(p, str) for p in said):
            raise ValueError("said must be a list of prompt names")
        values["said"] = tuple(said)
        return cls(**values)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(CallState))


# --- events fed to the engine ----------------------------------------------------------


@dataclass(frozen=True)
class CallStarted:
    """Twilio posted a new call to ``/voice``."""

    call_sid: str
    caller: str | None
    now: str


@dataclass(frozen=True)
class Digits:
    """The caller answered the Gather of ``node`` at step ``seq``; None means no input."""

    node: str
    seq: int
    digits: str | None


@dataclass(frozen=True)
class CallerLookedUp:
    """Answer to :class:`LookupCaller`: the single account's customer number, if exactly one."""

    customer_number: str | None


@dataclass(frozen=True)
class CustomerNumberChecked:
    """Answer to :class:`CheckCustomerNumber`: the number to keep (unknown: the mark)."""

    reference: str


@dataclass(frozen=True)
class PinChecked:
    """Answer to :class:`VerifyPin`."""

    verdict: Verdict
    now: str
    name: str | None = None


Event = CallStarted | Digits | CallerLookedUp | CustomerNumberChecked | PinChecked


# --- I/O the engine needs done ----------------------------------------------------------


@dataclass(frozen=True)
class LookupCaller:
    """Find the accounts that own ``caller`` (E.164, or None when withheld)."""

    caller: str | None


@dataclass(frozen=True)
class CheckCustomerNumber:
    """Is ``typed`` an account's customer number? Answer with the number itself, or
    with the unknown mark and a keyed hash of it (never the digits in clear)."""

    typed: str = dataclasses.field(repr=False)


@dataclass(frozen=True)
class VerifyPin:
    """Check ``pin`` for ``customer_number`` through the lockout counter.

    Transient: it exists only while the webhook runs and is never stored or logged.
    """

    customer_number: str
    caller: str | None
    pin: str = dataclasses.field(repr=False)


Need = LookupCaller | CheckCustomerNumber | VerifyPin


@dataclass(frozen=True)
class Step:
    """What the engine decided: the new state, actions to render, and I/O still needed."""

    state: CallState
    actions: tuple[Action, ...] = ()
    need: Need | None = None
