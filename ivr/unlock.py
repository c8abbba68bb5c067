"""Lifting an account's PIN lockout by hand: audited first, then unlocked.

The console's unlock button (supervisors) and ``ivr accounts unlock``/``delete``
(operators) both come here, so the order that matters cannot drift apart between them:
the audit row is written before the lock is lifted, and an unlock that cannot be
recorded does not happen.
"""

from __future__ import annotations

from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.lockout import Lockout

# Where an unlock happened, as recorded in the audit trail's ``source`` column.
SOURCE_CLI = "cli"
SOURCE_CONSOLE = "console"


def unlock_account(
    customer_number: str,
    *,
    actor: str,
    source: str,
    audit: AuditStore,
    lockout: Lockout,
    hasher: PinHasher,
) -> bool:
    """Record that ``actor`` unlocked the account, then lift its lockout.

    Returns True if there was a lock or failure count to clear. Any failure to record
    raises (DependencyError) before Redis is touched, so the account stays locked.
    """
    audit.record_unlock(customer_number, actor=actor, source=source)
    return lockout.unlock_account(hasher.subject("account", customer_number))
