"""PIN attempts on their way to the SQL audit trail: a Redis stream the worker drains.

A PIN webhook must not wait for SQL, and an rq job per attempt cost it ~10 Redis
commands and ~1.6 KB of Redis memory until a worker ran it. So each attempt is one
stream entry (time, call, account, caller, outcome — never digits), sent in the round
of the call's save (:meth:`AuditJournal.entry`). The worker
reads entries through a consumer group, writes them to SQL and only then acknowledges
and deletes them: a worker that dies in between leaves them pending, and any worker
claims them again after :data:`CLAIM_IDLE_MS`. The entry id is the row's unique key,
so writing an entry twice changes nothing.

One key on the state Redis (``<prefix>:audit:{attempts}``, :mod:`ivr.store.keys`), a
stream of ``c=CallSid a=customer f=caller v=outcome t=time`` whose TTL every entry renews.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from ivr.store.keys import JOURNAL_TTL_S, KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import dependency_errors, text
from ivr.store.rounds import Command, command

GROUP = "audit-writers"
# An entry read but not acknowledged for this long belonged to a worker that died (or
# whose SQL write failed): another read claims it.
CLAIM_IDLE_MS = 60_000


@dataclass(frozen=True)
class JournalEntry:
    """One PIN attempt read back from the journal."""

    entry_id: str
    call_sid: str
    customer_number: str
    caller: str | None
    outcome: str
    at: str


class AuditJournal:
    """Adds attempts to the stream (web) and reads them back for SQL (worker)."""

    def __init__(self, link: Link, keys: KeyLayout, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self._link = link
        self._claim_idle_ms = claim_idle_ms
        self.key = keys.audit_journal

    def entry(
        self, call_sid: str, customer_number: str, caller: str | None, outcome: str, at: str
    ) -> tuple[Command, Command]:
        """The commands adding one attempt, to send with the call's save (a side channel:
        their failure never fails a call)."""
        fields = ("c", call_sid, "a", customer_number, "f", caller or "", "v", outcome, "t", at)
        return (
            command("XADD", self.key, "*", *fields, essential=False, what="audit entry"),
            command("EXPIRE", self.key, JOURNAL_TTL_S, essential=False, what="audit ttl"),
        )

    @property
    def _client(self) -> redis.Redis:
        # The stream is one key: redis-py routes it on a cluster too.
        client: redis.Redis = self._link.client
        return client

    def read(self, consumer: str, count: int, block_ms: int | None = None) -> list[JournalEntry]:
        """Up to ``count`` entries for ``consumer``: stale pending ones first, then new ones.

        ``block_ms`` waits that long for a new entry when there is none (None: no wait).
        """
        with dependency_errors("audit journal read"):
            try:
                return self._read(consumer, count, block_ms)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                    raise
            # No stream or no group yet (no attempt since the key expired): make both.
            self._create_group()
            return self._read(consumer, count, block_ms)

    def _read(self, consumer: str, count: int, block_ms: int | None) -> list[JournalEntry]:
        # Redis 6.2 answers [cursor, entries], 7.0 adds a third element: take [1].
        claimed = self._client.xautoclaim(
            self.key, GROUP, consumer, self._claim_idle_ms, "0-0", count=count
        )[1]
        if claimed:
            # Redis 6.2 still hands out entries deleted while pending, without fields.
            gone = [entry_id for entry_id, fields in claimed if fields is None]
            if gone:
                self._client.xack(self.key, GROUP, *gone)
            return _entries(claimed)
        # The clients here speak RESP2: one stream asked, [[key, entries]] or nothing.
        reply: Any = self._client.xreadgroup(
            GROUP, consumer, {self.key: ">"}, count=count, block=block_ms
        )
        return _entries(reply[0][1]) if reply else []

    def done(self, entry_ids: Sequence[str]) -> None:
        """Forget entries whose rows are in SQL (acknowledge and delete them)."""
        if not entry_ids:
            return
        with dependency_errors("audit journal ack"):
            pipe = self._client.pipeline(transaction=True)  # one key: fine on a cluster
            pipe.xack(self.key, GROUP, *entry_ids)
            pipe.xdel(self.key, *entry_ids)
            pipe.execute()

    def leave(self, consumer: str) -> bool:
        """Remove ``consumer`` from the group if it holds no entry; True if removed.

        Worker names are new on every start, so without this each restart would leave
        one consumer behind in the group for as long as the stream lives. A consumer
        that still holds entries stays: removing it would orphan them.
        """
        with dependency_errors("audit journal leave"):
            try:
                pending = self._client.xpending_range(
                    self.key, GROUP, min="-", max="+", count=1, consumername=consumer
                )
            except redis.ResponseError:  # no stream or no group: nothing to leave
                return False
            if pending:
                return False
            return bool(self._client.xgroup_delconsumer(self.key, GROUP, consumer))

    def oldest_id(self) -> str | None:
        """The id of the oldest entry not yet written to SQL (its time in ms), if any."""
        with dependency_errors("audit journal read"):
            first: Any = self._client.xrange(self.key, count=1)
        return text(first[0][0]) if first else None

    def backlog(self) -> int:
        """Entries not yet written to SQL (read or not)."""
        with dependency_errors("audit journal length"):
            return int(self._client.xlen(self.key))

    def _create_group(self) -> None:
        try:
            # MKSTREAM: the worker may ask before any attempt was made.
            self._client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # another worker made it meanwhile: fine
                raise
        self._client.expire(self.key, JOURNAL_TTL_S)


def _entries(raw: Sequence[Any]) -> list[JournalEntry]:
    entries = []
    for entry_id, fields in raw:
        if fields is None:  # deleted while pending: nothing left to write
            continue
        values = {text(k): text(v) for k, v in fields.items()}
        entries.append(
            JournalEntry(
                entry_id=text(entry_id),
                call_sid=values.get("c", ""),
                customer_number=values.get("a", ""),
                caller=values.get("f") or None,
                outcome=values.get("v", ""),
                at=values.get("t", ""),
            )  # fmt: skip
        )
    return entries
