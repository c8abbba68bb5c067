"""Drain the audit journal (a Redis stream of PIN attempts) into the SQL audit trail.

Every worker that serves the ``audit`` queue runs a :class:`JournalDrain` thread beside
rq's loop: it reads attempts through the journal's consumer group, writes them in one
transaction, and only then acknowledges and deletes them. If SQL is down the entries stay
pending and are read again (by this or any other worker) once they have been idle for
:data:`~ivr.store.audit_journal.CLAIM_IDLE_MS`; each row's key is the entry id, so an
entry written twice is one row. ``ivr worker --burst`` drains the journal once instead.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import uuid
from datetime import datetime

from ivr.erasure import account_pseudonym, caller_pseudonym
from ivr.exceptions import DependencyError
from ivr.flow.state import Verdict
from ivr.store.account_admin import existing
from ivr.store.audit import AttemptRow
from ivr.store.audit_journal import AuditJournal, JournalEntry
from ivr.store.hashing import PinHasher
from workers.jobs import JobContext

log = logging.getLogger("workers.journal")

READ_BATCH = 500
# How long one read waits for new attempts: also how long a stopping worker may wait.
BLOCK_MS = 1000
# After a failure (Redis or SQL down), wait this long before trying again.
RETRY_PAUSE_S = 5.0
KEY_PREFIX = "journal-"


def consumer_name() -> str:
    """A name for this process's reader in the consumer group (unique per start)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def journal_of(ctx: JobContext) -> AuditJournal:
    """The audit journal on the worker's connection to the state Redis."""
    return AuditJournal(ctx.link, ctx.keys)


def drain_once(
    ctx: JobContext,
    consumer: str,
    block_ms: int | None = None,
    *,
    journal: AuditJournal | None = None,
) -> int:
    """Write one batch of journalled attempts to SQL; returns how many entries it took.

    Raises DependencyError when Redis or SQL fails (the entries then stay pending).
    """
    journal = journal or journal_of(ctx)
    entries = journal.read(consumer, READ_BATCH, block_ms)
    if not entries:
        return 0
    rows = [row for row in map(_row, entries) if row is not None]
    ctx.audit.record_attempts(_without_erased(ctx, rows))
    journal.done([entry.entry_id for entry in entries])
    return len(entries)


def drain_all(ctx: JobContext, consumer: str) -> int:
    """Drain until the journal has nothing more for ``consumer``; returns how many."""
    total, journal = 0, journal_of(ctx)
    while count := drain_once(ctx, consumer, journal=journal):
        total += count
    journal.leave(consumer)
    if total:
        log.info("audit journal: %d attempts written", total)
    return total


class JournalDrain(threading.Thread):
    """Drains the journal until :meth:`stop`; survives Redis and SQL outages."""

    def __init__(self, ctx: JobContext, consumer: str | None = None) -> None:
        super().__init__(name="audit-journal", daemon=True)
        self.ctx = ctx
        self.journal = journal_of(ctx)
        self.consumer = consumer or consumer_name()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                drain_once(self.ctx, self.consumer, BLOCK_MS, journal=self.journal)
            except DependencyError as exc:
                # The message names the store and the error type, never a value.
                log.warning("audit journal not drained: %s; retrying", exc)
                self._stopping.wait(RETRY_PAUSE_S)
            except Exception:
                log.exception("audit journal drain failed; retrying")
                self._stopping.wait(RETRY_PAUSE_S)

    def stop(self, timeout_s: float = BLOCK_MS / 1000 + 5) -> None:
        """Ask the thread to finish its current read and wait for it."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)
        if not self.is_alive():
            try:
                self.journal.leave(self.consumer)
            except DependencyError as exc:
                log.warning("audit journal: could not leave the group: %s", exc)


def _without_erased(ctx: JobContext, rows: list[AttemptRow]) -> list[AttemptRow]:
    """``rows``, those of accounts erased since the attempt pseudonymised as the erasure
    did to the rows already in SQL (:mod:`ivr.erasure`). A number is journalled in clear
    only while its account exists (else as its subject), so a clear one whose account is
    gone was erased."""
    clear = {r.customer_number for r in rows if r.customer_number.isdigit()}
    gone = clear - existing(ctx.engine, sorted(clear)) if clear else set()
    if not gone:
        return rows
    hasher = PinHasher.from_settings(ctx.settings.pin_store)
    return [
        dataclasses.replace(
            row, customer_number=account_pseudonym(hasher, row.customer_number),
            caller=caller_pseudonym(hasher, row.caller) if row.caller else None,
        ) if row.customer_number in gone else row
        for row in rows
    ]  # fmt: skip


def _row(entry: JournalEntry) -> AttemptRow | None:
    try:
        outcome = Verdict(entry.outcome).value
        at = datetime.fromisoformat(entry.at)
    except ValueError:
        # Written by no version of the app: keeping it pending would block nothing but
        # would be retried forever, so it is dropped (acknowledged) with a warning.
        log.warning("audit journal entry %s is malformed; skipped", entry.entry_id)
        return None
    return AttemptRow(
        KEY_PREFIX + entry.entry_id, entry.call_sid, entry.customer_number, entry.caller,
        outcome, at,
    )  # fmt: skip
