"""The PIN gate: the one way a PIN is checked (SPEC §5).

:meth:`PinGate.verify` derives the lockout subjects itself (keyed hashes of the customer
number and the caller's number), counts the submission as a failure before anything is
compared (:meth:`ivr.store.lockout.Lockout.begin`), and compares only what the lockout
allows. Known and unknown customer numbers take exactly the same path: the same counts,
and a comparison against a dummy digest when the account is missing, so neither the
answers nor their timing tell whether an account exists. Nothing else runs the lockout's
counting scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.deadline import Budget
from ivr.flow.state import UNKNOWN_CUSTOMER, Verdict, is_unknown
from ivr.store.hashing import PinHasher
from ivr.store.lockout import Lockout
from ivr.store.pins import PinStore
from ivr.store.rounds import Command


@dataclass(frozen=True)
class Verification:
    """A verdict, what the screen-pop and notifications need, and what is left to write."""

    verdict: Verdict
    name: str | None = None
    locked_now: bool = False
    # The lockout's writes after the comparison (reset on success, an undo when the
    # caller's block refused it): they go out with the call's save, one round for all.
    settle: tuple[Command, ...] = ()


@dataclass(frozen=True)
class PinGate:
    """Counts, then compares: the only caller of the lockout's counting scripts."""

    lockout: Lockout
    pins: PinStore
    hasher: PinHasher

    def verify(
        self, customer_number: str, caller: str | None, pin: str, budget: Budget | None = None
    ) -> Verification:
        """Judge one PIN submission; raises DependencyError if a store fails (then the
        caller is handed over as unavailable, and what was counted stays counted).
        ``budget``: how long the counts may wait on Redis (a webhook's)."""
        # An unknown number was kept only as its subject (ivr.flow.state.UNKNOWN_CUSTOMER):
        # counted under the same subject, compared against the dummy digest like any.
        account = (
            customer_number[len(UNKNOWN_CUSTOMER) :] if is_unknown(customer_number)
            else self.hasher.subject("account", customer_number)
        )  # fmt: skip
        caller_subject = self.hasher.subject("caller", caller) if caller else None
        attempt = self.lockout.begin(account, caller_subject, budget)
        if not attempt.allowed:
            return Verification(Verdict.LOCKED, settle=self.lockout.settle(attempt, False))
        found = self.pins.check_pin(customer_number, pin)
        if found is None:
            return Verification(Verdict.WRONG, locked_now=attempt.locked_now)
        return Verification(Verdict.VERIFIED, found.name, settle=self.lockout.settle(attempt, True))
