"""What deleting an account takes besides its rows, in one place for every CLI path.

``ivr accounts delete`` and ``ivr accounts import --prune`` call
:func:`clean_up_deleted_account` once for each account they delete, just before its
rows go (:mod:`ivr.store.account_prune`), so the two cannot drift apart and whatever
else an account leaves behind is added here once. Today that is its lockout state in
Redis, cleared the way ``ivr accounts unlock`` clears it (recorded in the audit trail,
then lifted); the GDPR erasure (lockout state and audit pseudonymisation,
:mod:`ivr.erasure`) belongs here too. The function may read the account (it still
exists) and may delete it itself; it must be safe to run again for the same account,
since a failed prune or delete is completed by running it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ivr.cli.unlocking import LockoutTools, lockout_tools
from ivr.config import Settings


@dataclass(frozen=True)
class AccountCleanup:
    """What :func:`clean_up_deleted_account` uses, opened once per command."""

    settings: Settings
    # The PIN store, the audit trail and the lockout; None without a [redis] url (there
    # is then no lockout state to clear).
    tools: LockoutTools | None


@contextmanager
def open_cleanup(settings: Settings) -> Iterator[AccountCleanup]:
    """The clean-up of ``settings``, open for as many accounts as a command deletes."""
    if not settings.redis.url:
        yield AccountCleanup(settings, None)
        return
    with lockout_tools(settings) as tools:
        yield AccountCleanup(settings, tools)


def clean_up_deleted_account(cleanup: AccountCleanup, customer_number: str) -> bool:
    """Clear what the account ``customer_number`` leaves outside its rows, just before
    they are deleted: its lockout state. True when there was a lockout or a failure count
    to clear. DependencyError (or a Redis error) when that fails: the account is then not
    deleted."""
    if cleanup.tools is None:
        return False
    return cleanup.tools.unlocker.account(customer_number)
