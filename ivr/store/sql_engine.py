"""SQL engines for the PIN store's database: short timeouts, and a lean one for hot reads.

The webhooks' two reads (caller lookup, PIN check) run on their own engine where the
database is a server: in autocommit, without pre-ping. With the default engine each read
on PostgreSQL cost a BEGIN, the pre-ping's ``SELECT 1``, the SELECT and a ROLLBACK —
four round trips for one indexed row. Autocommit leaves no transaction to begin or end,
and instead of pinging before every read, a read that finds its pooled connection dead
is retried once on a fresh one (:func:`ivr.store.pin_queries.fetch_all`): a read is
idempotent. Writes (import, rehash, audit) stay on the default engine, in transactions.

A SQLite file runs in WAL mode (``PRAGMA journal_mode=WAL``, set as each connection
opens; it stays in the file): readers then never wait for a writer, so PIN checks go on
while an import commits its chunks, and a writer waits for another writer up to the
busy timeout (``timeout_s``) instead of failing at once. SQLite keeps two files beside
the database, ``<file>-wal`` and ``<file>-shm``, while it is open; it folds the first
back and deletes both when the last connection closes. An in-memory database has no
WAL and keeps the default journal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ivr.exceptions import DependencyError

SQLITE = "sqlite"


def create_engine(url: str, timeout_s: float) -> sa.Engine:
    """An engine that fails fast when the database is down or slow."""
    parsed = sa.make_url(url)
    engine = sa.create_engine(
        parsed,
        connect_args=_connect_args(parsed, timeout_s),
        # A server connection can die while pooled; a SQLite file connection cannot, and
        # pinging it would cost a query on every webhook that reads the store.
        pool_pre_ping=parsed.get_backend_name() != SQLITE,
        pool_timeout=timeout_s,
        hide_parameters=True,
    )
    if parsed.get_backend_name() == SQLITE:
        sa.event.listen(engine, "connect", _sqlite_foreign_keys)
        _use_wal(engine, parsed)
    return engine


def _connect_args(url: sa.URL, timeout_s: float) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {"timeout": timeout_s}  # seconds to wait for a lock held by another writer
    if backend == "postgresql":
        options = url.query.get("options")
        extra = f"-c statement_timeout={max(1, int(timeout_s * 1000))}"
        # Keep options given in the URL (e.g. -c search_path=...) instead of replacing them.
        if isinstance(options, str) and options:
            extra = f"{options} {extra}"
        return {"connect_timeout": max(1, math.ceil(timeout_s)), "options": extra}
    return {}


def _sqlite_foreign_keys(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def in_memory(url: sa.URL) -> bool:
    """True for a SQLite database that lives in memory (no file, so no WAL)."""
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or (url.query.get("mode") == "memory")
    )


def _use_wal(engine: sa.Engine, url: sa.URL) -> None:
    """Every connection of ``engine`` to a SQLite file runs in WAL mode."""
    if not in_memory(url):
        sa.event.listen(engine, "connect", _sqlite_wal)


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    # Persistent: once one connection has switched the file, this only reads the mode.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_read_engine(url: str, timeout_s: float, engine: sa.Engine) -> sa.Engine:
    """The engine for hot single-statement reads, with the webhooks' ``timeout_s``.

    On SQLite too a separate pool: its busy timeout (how long a read waits for another
    process's lock) must stay within the webhook deadline, and ``interrupt()`` does not
    end that wait. An in-memory database exists only on ``engine``, which then serves.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == SQLITE:
        if in_memory(parsed):
            return engine
        reads = sa.create_engine(
            parsed, connect_args=_connect_args(parsed, timeout_s), pool_timeout=timeout_s,
            hide_parameters=True,
        )  # fmt: skip
        _use_wal(reads, parsed)
        return reads
    return sa.create_engine(
        parsed,
        connect_args=_connect_args(parsed, timeout_s),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_timeout=timeout_s,
        hide_parameters=True,
    )


def create_all(metadata: sa.MetaData, engine: sa.Engine) -> None:
    """Create ``metadata``'s missing tables, also while other processes do the same.

    Every gunicorn worker builds its app, and so creates the tables, at the same moment:
    ``create_all`` checks, then creates, so a worker can lose the race and fail on "table
    already exists" (and refuse to boot). Checking again finds what the winner created.
    Each lost race means another table exists, so one attempt per table, plus one, is
    always enough (three were not: eight racers lost on three tables in turn).
    """
    attempts = len(metadata.tables) + 1
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except sa_exc.DatabaseError:
            if attempt == attempts - 1:
                raise


@contextmanager
def translate_errors(store: str) -> Iterator[None]:
    """Database failures become DependencyError("<store> failed: <one line>").

    Engines run with hide_parameters, so the driver's first line carries no bound value.
    """
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise DependencyError(f"{store} failed: {_first_line(exc)}") from exc
    except OSError as exc:
        raise DependencyError(f"{store} failed: {exc}") from exc


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def as_utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC: SQLite stores wall-clock text without an offset and gives
    back naive values, so naive input is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
