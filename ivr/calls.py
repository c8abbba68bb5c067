"""Drive one call through the flow: load state, run the pure engine, do its I/O, save.

This is the only place where the engine meets the stores. Any dependency failure, an
unknown CallSid, a replayed or concurrent step ends the same way: the caller is routed
to an agent as not identified (reason ``unavailable``), never an error.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.exceptions import DependencyError
from ivr.flow import engine
from ivr.flow.actions import Action
from ivr.flow.model import Flow
from ivr.flow.state import (
    UNKNOWN_CUSTOMER,
    CallerLookedUp,
    CallStarted,
    CallState,
    CheckCustomerNumber,
    CustomerNumberChecked,
    Digits,
    Event,
    LookupCaller,
    Need,
    PinChecked,
    Step,
    Verdict,
    VerifyPin,
)
from ivr.observers import Observers, PinAttempt
from ivr.store.audit import AttemptRow, AuditStore
from ivr.store.audit_journal import AuditJournal
from ivr.store.calls import CallStore
from ivr.store.pins import PinStore
from ivr.store.rounds import Command
from ivr.verification import PinGate, Verification

log = logging.getLogger("ivr.calls")
verify_log = logging.getLogger("ivr.verification")
# One line per saved step (ivr dev formats it for people); its arguments carry no digits.
STEP_MESSAGE = "call=%s step=%s next=%s routed=%s identified=%s reason=%s attempts=%d"

Clock = Callable[[], datetime]
# What CallState.answered names for the two requests that are not a Gather's answer.
STARTED = "voice"
FALLBACK = "fallback"
# A request whose step another request claimed first waits this long for that one's
# answer (a retry sent while the first was still at work), polling every SETTLE_POLL_S.
SETTLE_WAIT_S = 1.0
SETTLE_POLL_S = 0.05


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
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
class CallService:
    """Everything a voice webhook needs, created once per app and passed explicitly."""

    flow: Flow
    calls: CallStore
    pins: PinStore
    gate: PinGate
    journal: AuditJournal
    audit: AuditStore
    observers: Observers = Observers()
    clock: Clock = utc_now

    def start(self, call_sid: str, caller: str | None) -> tuple[Action, ...]:
        """A new call arrived at ``/voice``: greet and open the menu."""
        if not call_sid:
            return self._unavailable(call_sid, caller, None, None)
        now = _iso(self.clock())
        step = engine.advance(self.flow, None, CallStarted(call_sid, caller, now))
        state = step.state.evolve(answered=STARTED)
        try:
            if self.calls.create(state):
                self._log(state, "start")
                self.observers.call_changed(state, None, None)
                return step.actions
            existing = self.calls.load(call_sid)
        except DependencyError as exc:
            return self._unavailable(call_sid, caller, None, exc)
        if existing is None:
            return self._unavailable(call_sid, caller, None, None)
        # The same CallSid at /voice again: Twilio retrying the start gets the same answer;
        # a replay after the call moved on gets a safe one. Neither changes the call.
        return self._again(existing, STARTED)

    def step(
        self, call_sid: str, node: str, seq: int, digits: str | None, language: str | None
    ) -> tuple[Action, ...]:
        """The caller answered a Gather (or stayed silent)."""
        try:
            state, claimed = self.calls.load_for_step(call_sid, seq)
            if state is not None and not claimed:
                state = self._settled(call_sid, seq, state)
        except DependencyError as exc:
            return self._unavailable(call_sid, None, language, exc)
        if state is None:
            log.warning("call=%s step=%s unknown call", call_sid, node)
            return self._unavailable(call_sid, None, language, None)
        request = f"{node}:{seq}"
        if not claimed or state.routed or (state.node, state.seq) != (node, seq):
            return self._again(state, request)
        return self._finish(state, self._run(state, Digits(node, seq, digits)), request)

    def fallback(
        self, call_sid: str, caller: str | None, language: str | None
    ) -> tuple[Action, ...]:
        """Twilio's fallback URL: our primary answer failed, so hand the caller over.

        A call already handed over is not changed (a replay, or an answer that arrived
        late): it gets the safe answer.
        """
        try:
            state = self.calls.load(call_sid) if call_sid else None
        except DependencyError as exc:
            return self._unavailable(call_sid, caller, language, exc)
        step = engine.unavailable(
            self.flow, state, call_sid=call_sid, caller=caller, language=language
        )
        if state is None:
            return step.actions
        if state.routed:
            return self._again(state, FALLBACK)
        return self._finish(state, step, FALLBACK)

    def status(self, call_sid: str, call_status: str) -> None:
        """Record Twilio's status callback; raises DependencyError when Redis is down."""
        state = self.calls.set_status(call_sid, call_status)
        self.observers.call_status(call_sid, call_status, state)

    def screen_pop(self, call_sid: str) -> tuple[CallState | None, str | None]:
        """The stored state of ``call_sid`` and Twilio's last CallStatus for it.

        One round trip; DependencyError when Redis is down.
        """
        return self.calls.load_with_status(call_sid)

    # --- internals ----------------------------------------------------------------------

    def _run(self, state: CallState, event: Event) -> Turn:
        """Advance the engine and perform every I/O need until it returns actions only."""
        turn = Turn(engine.advance(self.flow, state, event))
        actions = list(turn.step.actions)
        step = turn.step
        try:
            while step.need is not None:
                result = self._perform(step.need, step.state, turn)
                step = engine.advance(self.flow, step.state, result)
                actions.extend(step.actions)
        except DependencyError as exc:
            self._failed(state.call_sid, exc)
            step = engine.unavailable(
                self.flow, step.state, call_sid=state.call_sid, caller=state.caller,
                language=state.language,
            )  # fmt: skip
            actions.extend(step.actions)
        turn.step = Step(step.state, tuple(actions))
        return turn

    def _perform(self, need: Need, state: CallState, turn: Turn) -> Event:
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
            try:
                verified = self.gate.verify(need.customer_number, need.caller, need.pin)
            except DependencyError as exc:
                # Not judged, but an attempt all the same: audited as unavailable.
                self._failed(state.call_sid, exc)
                verified = Verification(Verdict.UNAVAILABLE)
            now = _iso(self.clock())
            attempt = PinAttempt(
                state.call_sid, need.customer_number, need.caller, verified.verdict,
                verified.locked_now, now,
            )  # fmt: skip
            _log_verdict(state.call_sid, verified.verdict, verified.locked_now)
            # The lockout's settlement and the audit entry go out with the save.
            turn.writes.extend(verified.settle)
            turn.attempts.append((attempt, len(turn.writes)))
            turn.writes.extend(self.journal.entry(
                attempt.call_sid, attempt.customer_number, attempt.caller,
                attempt.verdict.value, attempt.at,
            ))  # fmt: skip
            return PinChecked(verified.verdict, now, verified.name)
        raise TypeError(f"unknown need {need!r}")  # pragma: no cover

    def _again(self, state: CallState, request: str) -> tuple[Action, ...]:
        """A request the call has answered already: the same answer again if it is the
        one that left the call where it is (a retry), else the safe one (a replay, or a
        step the call has left): route as not identified. Nothing is saved or counted."""
        if state.answered == request:
            log.info("call=%s %s answered again (a retry)", state.call_sid, request)
            return engine.answer_again(self.flow, state)
        log.warning("call=%s %s is not the call's current step; nothing changed",
                    state.call_sid, request)  # fmt: skip
        return engine.unavailable(
            self.flow, None, call_sid=state.call_sid, caller=state.caller,
            language=state.language,
        ).actions  # fmt: skip

    def _settled(self, call_sid: str, seq: int, state: CallState) -> CallState:
        """Another request for the same step (a retry sent before our first answer) is at
        work: wait until it saved, so this one can give its answer again."""
        deadline = time.monotonic() + SETTLE_WAIT_S
        while state.seq == seq and not state.routed and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_S)
            state = self.calls.load(call_sid) or state
        return state

    def _finish(self, loaded: CallState, turn: Turn | Step, request: str) -> tuple[Action, ...]:
        """Save the new state if nobody else moved this call meanwhile; else hand over."""
        turn = turn if isinstance(turn, Turn) else Turn(turn)
        new = turn.step.state.evolve(answered=request)
        if new.seq == loaded.seq:
            # Routing emits no Gather, but the version must still move for the CAS.
            new = new.evolve(seq=loaded.seq + 1)
        try:
            saved = self.calls.save(new, loaded.seq, turn.writes)
        except DependencyError as exc:
            self._attempted(turn, [attempt for attempt, _ in turn.attempts])
            return self._unavailable(new.call_sid, new.caller, new.language, exc)
        # Judged and journalled, whether the save won or not.
        self._attempted(turn, [a for a, at in turn.attempts if saved.writes[at] is None])
        if not saved.written:
            log.warning("call=%s concurrent step refused", new.call_sid)
            return self._unavailable(new.call_sid, new.caller, new.language, None)
        self._log(new, loaded.node)
        self.observers.call_changed(new, loaded, saved.status)
        return turn.step.actions

    def _attempted(self, turn: Turn, unjournalled: list[PinAttempt]) -> None:
        """Report the turn's attempts; those the journal did not take go to SQL directly."""
        for attempt, _ in turn.attempts:
            self.observers.pin_attempted(attempt)
        if not unjournalled:
            return
        rows = [
            AttemptRow(f"direct-{uuid.uuid4().hex}", a.call_sid, a.customer_number, a.caller,
                       a.verdict.value, datetime.fromisoformat(a.at))
            for a in unjournalled
        ]  # fmt: skip
        try:
            self.audit.record_attempts(rows)
        except DependencyError as exc:
            log.error("call=%s %d PIN attempt(s) not audited: %s", rows[0].call_sid, len(rows),
                      exc)  # fmt: skip

    def _unavailable(
        self, call_sid: str, caller: str | None, language: str | None, exc: DependencyError | None
    ) -> tuple[Action, ...]:
        """Hand over a call whose stored state cannot be used (or saved)."""
        if exc is not None:
            self._failed(call_sid, exc)
        step = engine.unavailable(
            self.flow, None, call_sid=call_sid, caller=caller, language=language
        )
        return step.actions

    def _failed(self, call_sid: str, exc: DependencyError) -> None:
        log.error("call=%s dependency failed: %s", call_sid, exc)
        self.observers.dependency_failed(call_sid, exc)

    def _log(self, state: CallState, came_from: str) -> None:
        outcome = state.reason.value if state.reason else "-"
        log.info(
            STEP_MESSAGE,
            state.call_sid, came_from, state.node, state.routed, state.identified, outcome,
            state.attempts,
        )  # fmt: skip


def _log_verdict(call_sid: str, verdict: Verdict, locked_now: bool) -> None:
    """One line per judged PIN (never the digits); the one that locked an account warns."""
    if locked_now:
        verify_log.warning("call=%s verify=%s account_locked=true", call_sid, verdict.value)
    else:
        verify_log.info("call=%s verify=%s", call_sid, verdict.value)
