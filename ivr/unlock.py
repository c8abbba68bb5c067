"""Lifting a PIN lockout by hand (an account's, or a caller number's block): audited
first, then unlocked.

The console's unlock button (supervisors), ``ivr accounts unlock``/``delete`` and
``ivr callers unlock`` (operators) all come here, so the order that matters cannot
drift apart between them: the audit row is written before the lock is lifted, and an
unlock that cannot be recorded does not happen.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.lockout import Lockout

# Where an unlock happened, as recorded in the audit trail's ``source`` column.
SOURCE_CLI = "cli"
SOURCE_CONSOLE = "console"
# How the withheld numbers' shared bucket is named where a caller number is expected.
WITHHELD = "withheld"


@dataclass(frozen=True)
class Unlocker:
    """Unlocks done by ``actor`` via ``source``; each raises DependencyError if it cannot
    be recorded, before Redis is touched (the lock then stays)."""

    actor: str
    source: str
    audit: AuditStore
    lockout: Lockout
    hasher: PinHasher

    def account(self, customer_number: str) -> bool:
        """Record, then lift the account's lockout; True if there was a lock or count."""
        self.audit.record_unlock(customer_number, actor=self.actor, source=self.source)
        return self.lockout.unlock_account(self.hasher.subject("account", customer_number))

    def caller(self, e164: str | None) -> bool:
        """Record, then lift the block of caller number ``e164`` (None: the withheld
        numbers' bucket); True if there was a block or count."""
        self.audit.record_unlock("", actor=self.actor, source=self.source,
                                 caller=e164 or WITHHELD)  # fmt: skip
        subject = self.hasher.subject("caller", e164) if e164 else None
        return self.lockout.unlock_caller(subject)
