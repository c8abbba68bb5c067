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
from ivr.store.lockout import Lockout
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

    def verify(self, need: VerifyPin, call_sid: str, batch: Batch | None = None) -> Outcome:
        """Count the attempt, then compare; raises DependencyError if a store fails.

        The count goes to Redis at once (it gates the comparison); the reset after a right
        PIN joins ``batch`` when one is given, to go out with the call's save.
        """
        account_key = self.hasher.subject("account", need.customer_number)
        caller_key = self.hasher.subject("caller", need.caller) if need.caller else None
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
