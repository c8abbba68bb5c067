"""Abort, from another thread, the SQL a thread is waiting on: client-side cancellation.

PostgreSQL's ``statement_timeout`` is enforced by the server, and ``connect_timeout``
covers only new connections: a server that hangs (SIGSTOP, a stalled disk, a dead
network path that still ACKs) holds a query on a pooled connection for as long as it
hangs. The server's own cancel request goes through the postmaster, which may hang too.
So cancelling happens on this side:

- PostgreSQL (psycopg): shut the connection's socket down. The waiting driver wakes at
  once with "server closed the connection"; the pool throws that connection away.
- SQLite: ``sqlite3.Connection.interrupt()`` aborts the running statement.

A :class:`Canceller` watches an engine's pool: which thread has which connection checked
out. :meth:`Canceller.cancel` aborts what a given thread holds, and marks the thread so
that nothing retries the read on a fresh connection (:meth:`Canceller.cancelled`) until
:meth:`Canceller.clear`.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
from contextlib import suppress
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)


class Canceller:
    """Tracks which thread holds which checked-out connection, for one or more engines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(DBAPI connection) -> (the thread that checked it out, the connection); only
        # while checked out, whichever thread returns it (a GC'd proxy returns elsewhere).
        self._held: dict[int, tuple[int, Any]] = {}
        self._cancelled: set[int] = set()

    def attach(self, engine: sa.Engine) -> None:
        """Watch ``engine``'s pool (once per engine)."""
        sa.event.listen(engine, "checkout", self._checkout)
        sa.event.listen(engine, "checkin", self._checkin)
        sa.event.listen(engine, "invalidate", self._invalidated)

    def cancel(self, thread_id: int) -> None:
        """Abort the statement(s) thread ``thread_id`` is running; never blocks."""
        with self._lock:
            self._cancelled.add(thread_id)
            held = [conn for owner, conn in self._held.values() if owner == thread_id]
        for dbapi_connection in held:
            _abort(dbapi_connection)

    def cancelled(self) -> bool:
        """True when the current thread's SQL was cancelled (do not retry it)."""
        with self._lock:
            return threading.get_ident() in self._cancelled

    def clear(self, thread_id: int) -> None:
        """The thread's work is over: later work may retry again."""
        with self._lock:
            self._cancelled.discard(thread_id)

    @property
    def checked_out(self) -> int:
        """Connections checked out now (of the watched engines)."""
        with self._lock:
            return len(self._held)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with self._lock:
            self._held[id(dbapi_connection)] = (threading.get_ident(), dbapi_connection)

    def _checkin(self, dbapi_connection: Any, _record: Any) -> None:
        self._forget(dbapi_connection)

    def _invalidated(self, dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        self._forget(dbapi_connection)

    def _forget(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._held.pop(id(dbapi_connection), None)


def _abort(dbapi_connection: Any) -> None:
    """Make a blocked driver call on ``dbapi_connection`` fail now."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        with suppress(sqlite3.Error):
            dbapi_connection.interrupt()
        return
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return
    try:
        fd = os.dup(fileno())
    except Exception:  # noqa: BLE001 - already closed: nothing is waiting on it
        return
    # A duplicate of the descriptor: shutdown() acts on the socket itself (waking the
    # driver), and closing the duplicate leaves the driver's own descriptor alone.
    with socket.socket(fileno=fd) as sock, suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    log.warning("a SQL statement was cancelled at the webhook deadline")
