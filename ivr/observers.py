"""Things that want to know what happened in a call, without slowing it down or failing it.

The call service reports every saved state change, every judged PIN attempt, every
status callback and every dependency failure to its :class:`Observers`, as plain values:
no store object crosses this line. Observers publish board events, enqueue jobs (CRM
webhook, lockout SMS) and count metrics; the audit entry of an attempt is not theirs
(it goes out with the call's save). An observer that raises is logged and ignored: the
caller must reach an agent whatever a side channel does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.exceptions import DependencyError
from ivr.flow.state import CallState, Verdict

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

    def pin_attempted(self, attempt: PinAttempt) -> None:
        """A PIN submission was counted, judged and journalled for the audit trail."""

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        """Twilio reported the call's status (completed, busy, …).

        ``state`` is the call as stored when the status arrived (None: unknown call),
        read in the same round trip as the status was saved.
        """

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        """Redis or the PIN store failed, so the caller was handed over as unavailable."""


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

    def pin_attempted(self, attempt: PinAttempt) -> None:
        for member in self.members:
            try:
                member.pin_attempted(attempt)
            except Exception:
                log.exception("call=%s observer %s failed", attempt.call_sid, _name(member))

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        for member in self.members:
            try:
                member.dependency_failed(call_sid, error)
            except Exception:
                log.exception("call=%s observer %s failed", call_sid, _name(member))

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        for member in self.members:
            try:
                member.call_status(call_sid, status, state)
            except Exception:
                log.exception("call=%s observer %s failed", call_sid, _name(member))


def _name(member: CallObserver) -> str:
    return type(member).__name__
