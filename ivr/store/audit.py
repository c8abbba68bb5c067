"""The audit trail: every PIN attempt and every unlock, in the SQL database (Core only).

One table holds both kinds of event so an export is one ordered scan. Rows carry the
time, CallSid, customer number, caller and outcome — never digits of a PIN. Each row
has a unique ``event_key``: for an attempt, the id of its entry in the audit journal
(:mod:`ivr.store.audit_journal`), so an entry the worker writes twice is one row (SPEC §5,
"every attempt is audited"). Rows older than the retention period are removed by
:meth:`AuditStore.purge`. Works on SQLite and PostgreSQL; database failures surface as
DependencyError.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from ivr.exceptions import ConfigError, DependencyError
from ivr.flow.state import Verdict
from ivr.store.sql_engine import as_utc, create_all, create_engine, translate_errors

metadata = sa.MetaData()

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_key", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("customer_number", sa.String(64), nullable=False),
    sa.Column("caller", sa.String(32)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("source", sa.String(32)),
    sa.Index("ix_audit_events_at", "at"),
)

UNLOCKED = "unlocked"
# Export streams this many rows per fetch instead of loading the whole period in memory.
EXPORT_BATCH = 500


class AuditKind(str, Enum):
    """What an audit row records."""

    ATTEMPT = "attempt"
    UNLOCK = "unlock"


@dataclass(frozen=True)
class AttemptRow:
    """One PIN attempt to record; ``key`` is unique per attempt (a rerun is skipped)."""

    key: str
    call_sid: str
    customer_number: str
    caller: str | None
    outcome: str
    at: datetime


@dataclass(frozen=True)
class AuditRecord:
    """One audit row as exported; ``outcome`` is a Verdict value or ``unlocked``."""

    at: datetime
    kind: AuditKind
    call_sid: str | None
    customer_number: str
    caller: str | None
    outcome: str
    actor: str | None
    source: str | None


class AuditStore:
    """Writes and reads the audit trail over one SQLAlchemy engine (shared with PinStore)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    @classmethod
    def on(cls, engine: sa.Engine) -> AuditStore:
        """The audit trail on ``engine`` (usually the PIN store's), its table created."""
        store = cls(engine)
        store.create_tables()
        return store

    @classmethod
    def from_url(cls, url: str, timeout_s: float) -> AuditStore:
        """The audit trail in the database at ``url`` (an engine of its own).

        ConfigError for a URL that cannot name a database, DependencyError when it is
        unreachable; the engine is disposed of again then.
        """
        try:
            engine = create_engine(url, timeout_s)
        except (sa_exc.ArgumentError, ImportError, ValueError) as exc:
            raise ConfigError(f"config: invalid [pin_store] url: {exc}") from None
        try:
            return cls.on(engine)
        except DependencyError:
            engine.dispose()
            raise

    @property
    def engine(self) -> sa.Engine:
        """The SQL engine (usually the PIN store's)."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection of the engine."""
        self._engine.dispose()

    def create_tables(self) -> None:
        """Create the audit table and its index if they do not exist yet."""
        with translate_errors("audit store"):
            create_all(metadata, self._engine)

    def record_attempt(
        self,
        call_sid: str,
        customer_number: str,
        caller: str | None,
        outcome: Verdict | str,
        at: datetime,
        *,
        attempt_id: str | None = None,
    ) -> None:
        """Record one PIN attempt; recording the same attempt again changes nothing.

        ``attempt_id`` identifies the attempt. Without it the key is derived from the other
        fields, which are unique per attempt in practice: one call submits at most one PIN
        per second. (The worker writes journal entries in batches: :meth:`record_attempts`.)
        """
        verdict = Verdict(outcome).value  # ValueError for anything that is not an outcome
        moment = as_utc(at)
        key = attempt_id or _derived_key(call_sid, customer_number, caller, verdict, moment)
        self.record_attempts([AttemptRow(key, call_sid, customer_number, caller, verdict, moment)])

    def record_attempts(self, rows: Sequence[AttemptRow]) -> None:
        """Record many attempts in one transaction; rows already recorded are skipped."""
        if not rows:
            return
        values = [
            {
                "event_key": row.key,
                "kind": AuditKind.ATTEMPT.value,
                "at": as_utc(row.at),
                "call_sid": row.call_sid,
                "customer_number": row.customer_number,
                "caller": row.caller,
                "outcome": Verdict(row.outcome).value,
            }  # fmt: skip
            for row in rows
        ]
        self._insert_once(values)

    def record_unlock(
        self,
        customer_number: str,
        actor: str,
        source: str,
        *,
        at: datetime | None = None,
        unlock_id: str | None = None,
        caller: str | None = None,
    ) -> None:
        """Record that ``actor`` unlocked an account (or, with ``caller`` and an empty
        ``customer_number``, a caller number's block) via ``source`` (``cli``, …)."""
        row = dict(
            event_key=unlock_id or uuid.uuid4().hex, kind=AuditKind.UNLOCK.value,
            at=as_utc(at or datetime.now(UTC)), call_sid=None, customer_number=customer_number,
            caller=caller, outcome=UNLOCKED, actor=actor, source=source,
        )  # fmt: skip
        self._insert_once([row])

    def export(self, since: datetime) -> Iterator[AuditRecord]:
        """Every row at or after ``since`` (naive means UTC), oldest first, streamed."""
        query = (
            sa.select(audit_events)
            .where(audit_events.c.at >= as_utc(since))
            .order_by(audit_events.c.at, audit_events.c.id)
        )
        with translate_errors("audit store"), self._engine.connect() as conn:
            result = conn.execution_options(yield_per=EXPORT_BATCH).execute(query)
            for row in result:
                yield _record(row)

    def purge(self, older_than: datetime) -> int:
        """Delete every row before ``older_than`` (naive means UTC); returns how many."""
        statement = audit_events.delete().where(audit_events.c.at < as_utc(older_than))
        with translate_errors("audit store"), self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    def pseudonymise(self, customer_number: str, pseudonym: str,
                     callers: Mapping[str, str]) -> int:  # fmt: skip
        """Replace ``customer_number`` by ``pseudonym`` in every row, and each caller
        number in ``callers`` by its pseudonym (an erased account: GDPR Art. 17). The
        rows stay, so counts and times remain; returns how many rows changed."""
        rows = audit_events.c
        statements = [
            audit_events.update().where(rows.customer_number == customer_number)
            .values(customer_number=pseudonym),
            *(audit_events.update().where(rows.caller == number).values(caller=alias)
              for number, alias in callers.items()),
        ]  # fmt: skip
        with translate_errors("audit store"), self._engine.begin() as conn:
            return sum(int(conn.execute(statement).rowcount) for statement in statements)

    def count(self) -> int:
        """Number of rows (for tests and health output)."""
        with translate_errors("audit store"), self._engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(audit_events)
            return int(conn.execute(query).scalar_one())

    def _insert_once(self, rows: list[dict[str, Any]]) -> None:
        statement = _insert_ignoring_duplicates(self._engine.dialect.name)
        with translate_errors("audit store"):
            try:
                with self._engine.begin() as conn:
                    conn.execute(statement, rows)
            except sa_exc.IntegrityError:
                # Only reached on dialects without ON CONFLICT: insert one by one instead.
                if len(rows) > 1:
                    for row in rows:
                        self._insert_once([row])


def _insert_ignoring_duplicates(dialect: str) -> Any:
    """INSERT that silently skips an existing event_key (retried jobs, replays)."""
    if dialect == "postgresql":
        return postgresql.insert(audit_events).on_conflict_do_nothing(index_elements=["event_key"])
    if dialect == "sqlite":
        return sqlite.insert(audit_events).on_conflict_do_nothing(index_elements=["event_key"])
    return audit_events.insert()


def _derived_key(
    call_sid: str, customer_number: str, caller: str | None, outcome: str, at: datetime
) -> str:
    parts = "\x1f".join((call_sid, customer_number, caller or "", outcome, at.isoformat()))
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()


def _record(row: sa.Row[Any]) -> AuditRecord:
    return AuditRecord(
        at=as_utc(row.at), kind=AuditKind(row.kind), call_sid=row.call_sid,
        customer_number=row.customer_number, caller=row.caller, outcome=row.outcome,
        actor=row.actor, source=row.source,
    )  # fmt: skip
