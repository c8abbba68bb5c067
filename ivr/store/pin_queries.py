"""The PIN store's per-webhook reads as precompiled SQL on a raw, pooled DBAPI connection.

``check_pin`` and the caller lookup each run one indexed, one-row SELECT per webhook, and
SQLAlchemy's Connection and Result layers cost several times the query itself. A
:class:`RawSelect` compiles its statement once for the engine's dialect (so the SQL and
its paramstyle are exactly what SQLAlchemy would send) and runs it on a connection taken
from the engine's own pool: connect events (SQLite pragmas, psycopg setup), pre-ping,
timeouts and pool limits all still apply. Driver errors are wrapped into the same
SQLAlchemy exceptions a Connection raises, so callers translate them as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.pool import PoolProxiedConnection

from ivr.store.sql_cancel import Canceller


class RawSelect:
    """One SELECT compiled once for an engine's dialect, run on a raw pooled connection.

    Only for statements whose parameters and columns need no type conversion (strings
    and integers on SQLite and psycopg): rows come back exactly as the driver returns
    them, so the constructor refuses anything SQLAlchemy would have to convert.
    """

    def __init__(
        self, engine: sa.Engine, statement: sa.Select[Any], canceller: Canceller | None = None
    ) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        problem = _unsupported(statement, compiled, dialect)
        if problem:
            raise ValueError(f"RawSelect cannot run this statement: {problem}")
        self._engine = engine
        self._canceller = canceller
        self.sql = compiled.string
        params = compiled.params
        # Binds that carry a value (e.g. LIMIT's) are fixed; the others must be given.
        self._fixed = {name: value for name, value in params.items() if value is not None}
        self._required = frozenset(name for name, value in params.items() if value is None)
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def rows(self, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row for ``params``; raises SQLAlchemy exceptions like Connection.execute."""
        if not params.keys() >= self._required:
            raise TypeError(f"RawSelect needs the parameters {', '.join(sorted(self._required))}")
        values = {**self._fixed, **params}
        args = values if self._order is None else tuple(values[name] for name in self._order)
        return fetch_all(self._engine, self.sql, args, self._canceller)


class _DeadConnection(Exception):
    """The pooled connection was dead; it has been invalidated."""

    def __init__(self, error: sa_exc.DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def fetch_all(
    engine: sa.Engine, sql: str, args: Any, canceller: Canceller | None = None
) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a pooled connection, end its transaction and return it to the pool.

    The read is followed by a rollback, so neither a SQLite lock nor a PostgreSQL
    transaction outlives it. On error the connection goes back rolled back, or is
    invalidated when the driver says it is dead (or the error is not an Exception). A read
    that found its connection dead is retried once on a fresh one: reads are idempotent,
    and this is what lets the read engine skip a pre-ping before every read. A read that
    ``canceller`` aborted (its webhook's deadline passed) is not retried.
    """
    try:
        return _fetch_once(engine, sql, args)
    except _DeadConnection as dead:
        if canceller is not None and canceller.cancelled():
            raise dead.error from dead.error.orig
    try:
        return _fetch_once(engine, sql, args)
    except _DeadConnection as dead:
        raise dead.error from dead.error.orig


def _fetch_once(engine: sa.Engine, sql: str, args: Any) -> list[tuple[Any, ...]]:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        raw = engine.raw_connection()
    except dbapi_error as exc:
        raise _wrap(engine, None, None, exc) from exc
    cursor: DBAPICursor | None = None
    try:
        cursor = raw.cursor()
        cursor.execute(sql, args)
        rows = [tuple(row) for row in cursor.fetchall()]
        cursor.close()
        raw.rollback()
    except BaseException as exc:
        dead = _release_after_error(engine, raw, cursor, exc)
        if isinstance(exc, dbapi_error):
            if dead:
                raise _DeadConnection(_wrap(engine, sql, args, exc)) from exc
            raise _wrap(engine, sql, args, exc) from exc
        raise
    raw.close()
    return rows


def _release_after_error(
    engine: sa.Engine, raw: PoolProxiedConnection, cursor: DBAPICursor | None, exc: BaseException
) -> bool:
    """Return the connection to the pool after a failed read, or invalidate it (True)."""
    dead = not isinstance(exc, Exception) or (
        isinstance(exc, engine.dialect.loaded_dbapi.Error)
        and engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
    )
    if dead:
        raw.invalidate(exc)
        return True
    if cursor is not None:
        with suppress(Exception):  # the pool rolls back or invalidates the connection next
            cursor.close()
    # The pool rolls back on return (the aborted PostgreSQL transaction too) and
    # invalidates the connection itself when that rollback fails.
    raw.close()
    return False


def _wrap(engine: sa.Engine, sql: str | None, args: Any, exc: Exception) -> sa_exc.DBAPIError:
    """The SQLAlchemy exception a Connection would raise for the driver error ``exc``."""
    wrapped = sa_exc.DBAPIError.instance(
        sql,
        args,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        dialect=engine.dialect,
    )
    assert isinstance(wrapped, sa_exc.DBAPIError)
    return wrapped


def _unsupported(statement: sa.Select[Any], compiled: sa.Compiled, dialect: sa.Dialect) -> str:
    """Why ``compiled`` cannot run as plain SQL with plain values; empty when it can."""
    if not isinstance(compiled, sa.sql.compiler.SQLCompiler):
        return "not a SQL statement"
    if compiled.literal_execute_params or compiled.post_compile_params:
        return "parameters rendered at execution time (IN lists, literal LIMIT)"
    if compiled.escaped_bind_names:
        return "parameter names the driver needs escaped"
    for bind in compiled.binds.values():
        if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return f"parameter {bind.key!r} needs conversion"
    for column in statement.selected_columns:
        if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
            return f"column {column.name!r} needs conversion"
    return ""
