"""Verify one PIN submission: lockout first (counted before the comparison), then compare.

Known and unknown customer numbers take exactly the same path: the lockout script runs
for both, and the PIN store compares against a dummy digest when the account is missing,
so neither the responses nor their timing tell whether an account exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.flow.state import Verdict, VerifyPin
from ivr.store.batch import Batch
from ivr.store.hashing import PinHasher
from ivr.store.lockout import ANONYMOUS_CALLER, Attempt, Lockout
from ivr.store.pin_step import Counted
from ivr.store.pins import PinStore

log = logging.getLogger("ivr.verification")


@dataclass(frozen=True)
class Outcome:
    """A verdict plus what the caller needs for the screen-pop and notifications."""

    verdict: Verdict
    name: str | None = None
    locked_now: bool = False


@dataclass(frozen=True)
class Verifier:
    """Runs :class:`VerifyPin` needs against the lockout counter and the PIN store."""

    lockout: Lockout
    pins: PinStore
    hasher: PinHasher

    def verify(
        self,
        need: VerifyPin,
        call_sid: str,
        batch: Batch | None = None,
        counted: Counted | None = None,
    ) -> Outcome:
        """Count the attempt, then compare; raises DependencyError if a store fails.

        The count goes to Redis at once (it gates the comparison), unless ``counted`` says
        it was counted for these very subjects while the state was loaded. The reset after
        a right PIN joins ``batch`` when one is given, to go out with the call's save.
        """
        account_key = self.hasher.subject("account", need.customer_number)
        caller_key = self.hasher.subject("caller", need.caller) if need.caller else None
        attempt = _already_counted(counted, account_key, caller_key, call_sid)
        if attempt is None:
            attempt = self.lockout.begin(account_key, caller_key)
        if not attempt.allowed:
            log.info("call=%s verify=%s", call_sid, attempt.status.value)
            return Outcome(Verdict.LOCKED)
        account = self.pins.check_pin(need.customer_number, need.pin)
        if account is None:
            if attempt.locked_now:
                log.warning("call=%s verify=wrong account_locked=true", call_sid)
            else:
                log.info("call=%s verify=wrong", call_sid)
            return Outcome(Verdict.WRONG, locked_now=attempt.locked_now)
        self.lockout.succeeded(account_key, caller_key, batch)
        log.info("call=%s verify=verified", call_sid)
        return Outcome(Verdict.VERIFIED, name=account.name)


def _already_counted(
    counted: Counted | None, account_key: str, caller_key: str | None, call_sid: str
) -> Attempt | None:
    """The attempt counted at load time, if it was counted for these subjects."""
    if counted is None:
        return None
    if counted.account_key == account_key and counted.caller_key == (
        caller_key or ANONYMOUS_CALLER
    ):
        return counted.attempt
    # Stored subjects that do not match the call's numbers: the pepper was rotated while
    # the call was in progress (subjects derive from it). Count again under the current
    # subjects: stricter, never looser.
    log.warning("call=%s stored lockout subjects are stale; counting again", call_sid)
    return None
