"""What deleting an account takes besides its rows, in one place for every CLI path.

``ivr accounts delete`` and ``ivr accounts import --prune`` call
:func:`clean_up_deleted_account` once for each account they delete, just before its
rows go (:mod:`ivr.store.account_prune`), so the two cannot drift apart. It is the
GDPR erasure of :mod:`ivr.erasure` (the provisioning API's ``DELETE`` does the same):
the account's audit rows pseudonymised and its lockout state in Redis cleared. It reads
the account (it still exists) and is safe to run again for the same account, since a
failed prune or delete is completed by running it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ivr.cli.unlocking import lockout_tools, open_store
from ivr.config import Settings
from ivr.erasure import Eraser
from ivr.store.account_admin import AccountAdmin
from ivr.store.audit import AuditStore


@dataclass(frozen=True)
class AccountCleanup:
    """What :func:`clean_up_deleted_account` uses, opened once per command."""

    settings: Settings
    eraser: Eraser


@contextmanager
def open_cleanup(settings: Settings) -> Iterator[AccountCleanup]:
    """The clean-up of ``settings``, open for as many accounts as a command deletes."""
    if not settings.redis.url:  # no lockout state anywhere: the audit trail only
        store = open_store(settings)
        try:
            admin = AccountAdmin(store.engine, store.hasher)
            eraser = Eraser(admin, AuditStore.on(store.engine), None, store.hasher)
            yield AccountCleanup(settings, eraser)
        finally:
            store.close()
        return
    with lockout_tools(settings) as tools:
        unlocker = tools.unlocker
        admin = AccountAdmin(tools.store.engine, tools.store.hasher)
        yield AccountCleanup(settings, Eraser(admin, unlocker.audit, unlocker.lockout,
                                              unlocker.hasher))  # fmt: skip


def clean_up_deleted_account(cleanup: AccountCleanup, customer_number: str) -> bool:
    """Erase what the account ``customer_number`` leaves outside its rows, just before
    they are deleted: its audit rows' identity and its lockout state. True when there was
    a lockout or a failure count to clear. DependencyError (or a Redis error) when that
    fails: the account is then not deleted."""
    return cleanup.eraser.erase_traces(customer_number)
