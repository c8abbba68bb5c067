"""One webhook's turn of work: the engine advanced and its I/O needs performed.

:class:`TurnRunner` runs the pure engine and performs each need it returns (caller
lookup, customer-number check, PIN verification) until only actions are left. What the
turn must write goes out with the call's save (:mod:`ivr.calls`): the lockout's
settlement and the audit entries. A turn whose answer went out without it (past the
webhook deadline) is replaced by :meth:`TurnRunner.discarded`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ivr.deadline import Budget, Deadline, has_time
from ivr.exceptions import DependencyError
from ivr.flow import engine
from ivr.flow.model import Flow
from ivr.flow.state import (
    UNKNOWN_CUSTOMER,
    CallerLookedUp,
    CallState,
    CheckCustomerNumber,
    CustomerNumberChecked,
    Event,
    LookupCaller,
    Need,
    PinChecked,
    Step,
    Verdict,
    VerifyPin,
)
from ivr.observers import PinAttempt
from ivr.store.audit_journal import AuditJournal
from ivr.store.pins import PinStore
from ivr.store.rounds import Command
from ivr.verification import PinGate, Verification

log = logging.getLogger("ivr.calls")
verify_log = logging.getLogger("ivr.verification")


def iso(moment: datetime) -> str:
    """``moment`` as the call state's timestamps: seconds, UTC as Z."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Turn:
    """One webhook's work before its save: the engine's step, the writes that go out with
    the save, and the PIN attempts to report once it is done."""

    step: Step
    writes: list[Command] = field(default_factory=list)
    # Each judged attempt, and where its audit entry stands in ``writes``.
    attempts: list[tuple[PinAttempt, int]] = field(default_factory=list)


@dataclass(frozen=True)
class TurnRunner:
    """Performs the engine's needs with the stores; ``failed`` hears of each failure."""

    flow: Flow
    pins: PinStore
    gate: PinGate
    journal: AuditJournal
    clock: Callable[[], datetime]
    failed: Callable[[str, DependencyError], None]

    def run(
        self, state: CallState, event: Event, deadline: Deadline, budget: Budget | None = None
    ) -> Turn:
        """Advance the engine and perform every I/O need until it returns actions only
        (no more once the deadline expired, or the budget, which bounds the needs' Redis
        rounds, is spent: the result would be discarded, lacking time for its save)."""
        turn = Turn(engine.advance(self.flow, state, event))
        actions = list(turn.step.actions)
        step = turn.step
        try:
            while step.need is not None and not deadline.expired and has_time(budget):
                result = self._perform(step.need, step.state, turn, budget)
                step = engine.advance(self.flow, step.state, result)
                actions.extend(step.actions)
        except DependencyError as exc:
            self.failed(state.call_sid, exc)
            step = engine.unavailable(
                self.flow, step.state, call_sid=state.call_sid, caller=state.caller,
                language=state.language,
            )  # fmt: skip
            actions.extend(step.actions)
        turn.step = Step(step.state, tuple(actions))
        return turn

    def discarded(self, loaded: CallState, turn: Turn) -> Turn:
        """The turn of work whose answer went out without it: the call routed as
        unavailable from where it was; its PIN attempts (counted, so they stay counted)
        are audited as unavailable, and the lockout's settlement is dropped."""
        log.warning("call=%s step=%s late: its result is discarded", loaded.call_sid, loaded.node)
        late = Turn(engine.unavailable_from(self.flow, loaded))
        for attempt, _ in turn.attempts:
            self._audit(late, dataclasses.replace(attempt, verdict=Verdict.UNAVAILABLE))
        return late

    def _perform(self, need: Need, state: CallState, turn: Turn, budget: Budget | None) -> Event:
        if isinstance(need, LookupCaller):
            owners = self.pins.accounts_for_phone(need.caller) if need.caller else []
            return CallerLookedUp(owners[0] if len(owners) == 1 else None)
        if isinstance(need, CheckCustomerNumber):
            # Kept in clear only if an account has it: callers type PINs into this prompt.
            if self.pins.get(need.typed) is not None:
                return CustomerNumberChecked(need.typed)
            subject = self.gate.hasher.subject("account", need.typed)
            return CustomerNumberChecked(UNKNOWN_CUSTOMER + subject)
        if isinstance(need, VerifyPin):
            return self._verify(need, state, turn, budget)
        raise TypeError(f"unknown need {need!r}")  # pragma: no cover

    def _verify(
        self, need: VerifyPin, state: CallState, turn: Turn, budget: Budget | None
    ) -> Event:
        try:
            verified = self.gate.verify(need.customer_number, need.caller, need.pin, budget)
        except DependencyError as exc:
            # Not judged, but an attempt all the same: audited as unavailable.
            self.failed(state.call_sid, exc)
            verified = Verification(Verdict.UNAVAILABLE)
        now = iso(self.clock())
        attempt = PinAttempt(
            state.call_sid, need.customer_number, need.caller, verified.verdict,
            verified.locked_now, now,
        )  # fmt: skip
        _log_verdict(state.call_sid, verified.verdict, verified.locked_now)
        # The lockout's settlement and the audit entry go out with the save.
        turn.writes.extend(verified.settle)
        self._audit(turn, attempt)
        return PinChecked(verified.verdict, now, verified.name)

    def _audit(self, turn: Turn, attempt: PinAttempt) -> None:
        """Journal ``attempt`` with the turn's save."""
        turn.attempts.append((attempt, len(turn.writes)))
        turn.writes.extend(self.journal.entry(
            attempt.call_sid, attempt.customer_number, attempt.caller,
            attempt.verdict.value, attempt.at,
        ))  # fmt: skip


def _log_verdict(call_sid: str, verdict: Verdict, locked_now: bool) -> None:
    """One line per judged PIN (never the digits); the one that locked an account warns."""
    if locked_now:
        verify_log.warning("call=%s verify=%s account_locked=true", call_sid, verdict.value)
    else:
        verify_log.info("call=%s verify=%s", call_sid, verdict.value)
