"""Things that want to know what happened in a call, without slowing it down or failing it.

The call service reports every saved state change, every PIN attempt and every status
callback to its :class:`Observers`. Observers publish board events, enqueue jobs (CRM
webhook, lockout SMS, audit), count metrics. An observer that raises is logged and
ignored: the caller must reach an agent whatever a side channel does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.flow.state import CallState, Verdict
from ivr.store.batch import Batch

log = logging.getLogger("ivr.observers")


@dataclass(frozen=True)
class PinAttempt:
    """One counted PIN submission. Never carries the PIN."""

    call_sid: str
    customer_number: str
    caller: str | None
    verdict: Verdict
    locked_now: bool
    at: str


class CallObserver(Protocol):
    """Receives call events; implementations must be cheap (enqueue, don't work)."""

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        """``state`` was saved; ``previous`` is what was stored before (None: new call).

        ``status`` is Twilio's last CallStatus for the call as the save found it (None
        when none was reported yet), so nobody needs another round trip to read it.
        """

    def pin_attempted(self, attempt: PinAttempt, batch: Batch) -> None:
        """A PIN submission was counted and judged.

        Redis writes go into ``batch`` (sent with the call's save, one round trip for
        all), not to Redis directly.
        """

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        """Twilio reported the call's status (completed, busy, …).

        ``state`` is the call as stored when the status arrived (None: unknown call),
        read in the same round trip as the status was saved.
        """


@dataclass(frozen=True)
class Observers:
    """Fans each event out to every observer, isolating their failures."""

    members: Sequence[CallObserver] = ()

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        for member in self.members:
            try:
                member.call_changed(state, previous, status)
            except Exception:
                log.exception("call=%s observer %s failed", state.call_sid, _name(member))

    def pin_attempted(self, attempt: PinAttempt, batch: Batch) -> None:
        for member in self.members:
            try:
                member.pin_attempted(attempt, batch)
            except Exception:
                log.exception("call=%s observer %s failed", attempt.call_sid, _name(member))

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        for member in self.members:
            try:
                member.call_status(call_sid, status, state)
            except Exception:
                log.exception("call=%s observer %s failed", call_sid, _name(member))


def _name(member: CallObserver) -> str:
    return type(member).__name__
