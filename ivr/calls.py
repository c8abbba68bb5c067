"""Drive one call through the flow: load state, run the pure engine, do its I/O, save.

This is the only place where the engine meets the stores. Any dependency failure, an
unknown CallSid, a replayed or concurrent step ends the same way: the caller is routed
to an agent as not identified (reason ``unavailable``), never an error.

Each webhook's work may carry a :class:`~ivr.deadline.Deadline`: no store is asked
anything once it has expired, and the new state is saved only after a successful
:meth:`~ivr.deadline.Deadline.commit`. Work that loses the race saves what the caller
was told instead — routed as unavailable — and its PIN attempts are audited so. Its
Redis rounds wait as long as the deadline allows: until only the save's reserve is left
(loads, lockout counts), and the save until only the observers' share is.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from ivr.deadline import UNBOUNDED, Budget, Deadline, has_time
from ivr.exceptions import DependencyError
from ivr.flow import engine
from ivr.flow.actions import Action
from ivr.flow.model import Flow
from ivr.flow.state import CallStarted, CallState, Digits, Step
from ivr.observers import Observers, PinAttempt
from ivr.resave import Resaver
from ivr.store.audit import AttemptRow, AuditStore
from ivr.store.audit_journal import AuditJournal
from ivr.store.calls import CallStore
from ivr.store.pins import PinStore
from ivr.turns import Turn, TurnRunner, iso
from ivr.verification import PinGate

log = logging.getLogger("ivr.calls")
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
# What a commit needs left of the deadline: the save and the observers' writes. The app
# derives it from the Redis timeouts (ivr.services.save_reserve); this is for others.
SAVE_RESERVE_S = 0.75
# What the observers' writes after the save need of it (ivr.services.observers_reserve):
# the save waits on Redis until only this is left.
OBSERVERS_RESERVE_S = 0.5


def _unless_spent(budget: Budget | None) -> Budget | None:
    """``budget``, or None once it is spent: work that starts too late to answer (it
    queued behind a full pool) still loads the call, to save what the caller was told
    (routed unavailable), within the socket timeout like that save."""
    return budget if has_time(budget) else None


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


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
    save_reserve_s: float = SAVE_RESERVE_S
    observers_reserve_s: float = OBSERVERS_RESERVE_S
    # Saves what callers were told when their step's own save failed, once Redis answers.
    resaver: Resaver = field(default_factory=Resaver)

    @cached_property
    def turns(self) -> TurnRunner:
        """Performs each webhook's I/O needs with this service's stores."""
        return TurnRunner(self.flow, self.pins, self.gate, self.journal, self.clock,
                          self._failed)  # fmt: skip

    def start(
        self, call_sid: str, caller: str | None, deadline: Deadline = UNBOUNDED
    ) -> tuple[Action, ...]:
        """A new call arrived at ``/voice``: greet and open the menu."""
        if not call_sid:
            return self._unavailable(call_sid, caller, None, None)
        now = iso(self.clock())
        step = engine.advance(self.flow, None, CallStarted(call_sid, caller, now))
        state = step.state.evolve(answered=STARTED)
        if not deadline.commit(self.save_reserve_s):
            return self._late(call_sid, "start")
        budget = deadline.budget(self.observers_reserve_s)
        try:
            if self.calls.create(state, budget):
                self._log(state, "start")
                self.observers.call_changed(state, None, None)
                return step.actions
            existing = self.calls.load(call_sid, budget)
        except DependencyError as exc:
            return self._unavailable(call_sid, caller, None, exc)
        if existing is None:
            return self._unavailable(call_sid, caller, None, None)
        # The same CallSid at /voice again: Twilio retrying the start gets the same answer;
        # a replay after the call moved on gets a safe one. Neither changes the call.
        return self._again(existing, STARTED)

    def step(
        self,
        call_sid: str,
        node: str,
        seq: int,
        digits: str | None,
        language: str | None,
        deadline: Deadline = UNBOUNDED,
    ) -> tuple[Action, ...]:
        """The caller answered a Gather (or stayed silent)."""
        budget = deadline.budget(self.save_reserve_s)
        try:
            state, claimed = self.calls.load_for_step(call_sid, seq, _unless_spent(budget))
            if state is not None and not claimed:
                state = self._settled(call_sid, seq, state, budget)
        except DependencyError as exc:
            return self._unavailable(call_sid, None, language, exc)
        if state is None:
            log.warning("call=%s step=%s unknown call", call_sid, node)
            return self._unavailable(call_sid, None, language, None)
        request = f"{node}:{seq}"
        if not claimed or state.routed or (state.node, state.seq) != (node, seq):
            return self._again(state, request)
        turn = self.turns.run(state, Digits(node, seq, digits), deadline, budget)
        return self._finish(state, turn, request, deadline)

    def fallback(
        self,
        call_sid: str,
        caller: str | None,
        language: str | None,
        deadline: Deadline = UNBOUNDED,
    ) -> tuple[Action, ...]:
        """Twilio's fallback URL: our primary answer failed, so hand the caller over.

        A call already handed over is not changed (a replay, or an answer that arrived
        late): it gets the safe answer.
        """
        try:
            budget = _unless_spent(deadline.budget(self.save_reserve_s))
            state = self.calls.load(call_sid, budget) if call_sid else None
        except DependencyError as exc:
            return self._unavailable(call_sid, caller, language, exc)
        step = engine.unavailable(
            self.flow, state, call_sid=call_sid, caller=caller, language=language
        )
        if state is None:
            return step.actions
        if state.routed:
            return self._again(state, FALLBACK)
        return self._finish(state, step, FALLBACK, deadline)

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

    def _settled(
        self, call_sid: str, seq: int, state: CallState, budget: Budget | None
    ) -> CallState:
        """Another request for the same step (a retry sent before our first answer) is at
        work: wait until it saved, so this one can give its answer again."""
        wait = min(SETTLE_WAIT_S, budget.left() if budget is not None else SETTLE_WAIT_S)
        until = time.monotonic() + wait
        while state.seq == seq and not state.routed and time.monotonic() < until:
            time.sleep(SETTLE_POLL_S)
            state = self.calls.load(call_sid, budget) or state
        return state

    def _finish(
        self, loaded: CallState, turn: Turn | Step, request: str, deadline: Deadline
    ) -> tuple[Action, ...]:
        """Save the new state if nobody else moved this call meanwhile; else hand over.
        Past the deadline, what is saved is what the caller got: routed as unavailable."""
        turn = turn if isinstance(turn, Turn) else Turn(turn)
        committed = deadline.commit(self.save_reserve_s)
        if not committed:
            turn = self.turns.discarded(loaded, turn)
        new = turn.step.state.evolve(answered=request)
        if new.seq == loaded.seq:
            # Routing emits no Gather, but the version must still move for the CAS.
            new = new.evolve(seq=loaded.seq + 1)
        # A discarded turn's save comes after the answer: bounded by the socket timeout.
        budget = deadline.budget(self.observers_reserve_s) if committed else None
        try:
            saved = self.calls.save(new, loaded.seq, turn.writes, budget)
        except DependencyError as exc:
            self._attempted(turn, [attempt for attempt, _ in turn.attempts])
            self.resaver.add(new.call_sid, lambda: self._resave(loaded, request))
            return self._unavailable(new.call_sid, new.caller, new.language, exc)
        # Judged and journalled, whether the save won or not.
        self._attempted(turn, [a for a, at in turn.attempts if saved.writes[at] is None])
        if not saved.written:
            log.warning("call=%s concurrent step refused", new.call_sid)
            return self._unavailable(new.call_sid, new.caller, new.language, None)
        self._log(new, loaded.node)
        self.observers.call_changed(new, loaded, saved.status)
        return turn.step.actions

    def _resave(self, loaded: CallState, request: str) -> None:
        """Store what the caller was told when this step's save failed: routed as
        unavailable from ``loaded``. Raises DependencyError while Redis does not answer."""
        told = engine.unavailable_from(self.flow, loaded).state.evolve(
            answered=request, seq=loaded.seq + 1
        )
        base = loaded
        saved = self.calls.save(told, base.seq)
        if not saved.written:
            # The failed save may have landed with only its reply lost: then the stored
            # state is this step's own, which the caller never heard; replace it.
            stored = self.calls.load(loaded.call_sid)
            if stored is None or stored.answered != request or stored.seq != told.seq:
                return  # the call moved on or expired: nothing the caller heard is lost
            if stored.reason is told.reason:
                return
            base, told = stored, told.evolve(seq=stored.seq + 1)
            saved = self.calls.save(told, base.seq)
            if not saved.written:
                return
        log.info("call=%s saved late as the caller heard it: routed unavailable",
                 told.call_sid)  # fmt: skip
        self._log(told, base.node)
        self.observers.call_changed(told, base, saved.status)

    def _late(self, call_sid: str, where: str) -> tuple[Action, ...]:
        """Work that starts after its deadline: the caller has been answered already."""
        log.warning("call=%s %s started after its deadline; nothing done", call_sid, where)
        return self._unavailable(call_sid, None, None, None)

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
