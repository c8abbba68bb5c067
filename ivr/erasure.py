"""Erasing an account (GDPR Art. 17): the account, its lockout state, its audit rows'
personal data.

The provisioning API's ``DELETE``, ``ivr accounts delete`` and the import's ``--prune``
all come here, so an account never leaves by a path that forgets part of it:

1. the audit rows keep their times and outcomes, but the customer number and the
   account's phone numbers in them are replaced by keyed pseudonyms (``erased:…``,
   the same HMAC as the lockout's Redis keys: linkable only with the pepper);
2. the account's lockout counters in Redis are cleared (recorded nowhere: an unlock
   row would put the number back into the audit trail);
3. the account and its phones are deleted.

Attempts still in the audit journal (Redis) when their account is erased are written
pseudonymised too: the worker finds their account gone (:mod:`workers.journal`).

Every step can run again: a request that failed part-way (a store down) is simply sent
again. The order keeps the account, and so its phone numbers, until the last step.
Not erased here: live call states and console events in Redis, which hold a number
for at most their TTL (``[redis] call_ttl_s``) and the board's bounded history.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.exceptions import AccountNotFound
from ivr.store.account_admin import ANY_VERSION, AccountAdmin, Expect
from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.lockout import Lockout

PREFIX = "erased:"
# The audit table's caller column holds 32 characters.
CALLER_PSEUDONYM_HEX = 32 - len(PREFIX)


def account_pseudonym(hasher: PinHasher, customer_number: str) -> str:
    """What an erased account's customer number becomes in the audit trail."""
    return PREFIX + hasher.subject("account", customer_number)


def caller_pseudonym(hasher: PinHasher, e164: str) -> str:
    """What an erased account's phone number becomes in the audit trail."""
    return PREFIX + hasher.subject("caller", e164)[:CALLER_PSEUDONYM_HEX]


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` was written by an erasure."""
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class Eraser:
    """Erases accounts from the PIN store, the audit trail and the lockout."""

    admin: AccountAdmin
    audit: AuditStore
    # None where no Redis is configured: then there is no lockout state to clear.
    lockout: Lockout | None
    hasher: PinHasher

    def erase(self, customer_number: str, expect: Expect = ANY_VERSION) -> bool:
        """Erase the account; False if it did not exist (its traces are erased anyway).
        VersionMismatch if ``expect`` fails (nothing erased then); DependencyError if a
        store fails (send it again)."""
        phones: tuple[str, ...] = ()
        try:
            current = self.admin.details(customer_number)
        except AccountNotFound:
            expect.check(None)
            seen = Expect(none_match=("*",))
        else:
            expect.check(current.version)
            seen, phones = Expect(match=(current.version,)), current.phones
        self._erase_traces(customer_number, phones)
        # A change since the check (a phone added, say) is refused: sent again, it is
        # erased in full.
        return self.admin.delete(customer_number, seen)

    def erase_traces(self, customer_number: str) -> bool:
        """Steps 1 and 2 only, for a caller that deletes the account's row itself (the
        CLI's delete and prune, in bulk); True if a lockout or failure count was cleared."""
        try:
            phones = self.admin.details(customer_number).phones
        except AccountNotFound:
            phones = ()
        return self._erase_traces(customer_number, phones)

    def _erase_traces(self, customer_number: str, phones: tuple[str, ...]) -> bool:
        callers = {number: caller_pseudonym(self.hasher, number) for number in phones}
        self.audit.pseudonymise(customer_number, account_pseudonym(self.hasher, customer_number),
                                callers)  # fmt: skip
        if self.lockout is None:
            return False
        return self.lockout.unlock_account(self.hasher.subject("account", customer_number))
