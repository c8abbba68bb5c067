"""Client-side cancellation: another thread aborts the SQL a thread is waiting on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from ivr.store.sql_cancel import Canceller
from ivr.store.sql_engine import create_engine
from tests.fleet.postgres import postgres_database

# SQLite: a statement that runs for many seconds in the VM (interrupt() ends it).
SLOW_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT count(*) FROM n"
)


def run_cancelled(engine: sa.Engine, sql: str) -> tuple[BaseException | None, float]:
    """Run ``sql`` in a thread, cancel it after 0.3 s; its error and how long it took."""
    canceller = Canceller()
    canceller.attach(engine)
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def work() -> None:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            cursor.fetchall()
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - what the driver raised is the result
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.3)
    assert worker.ident is not None
    canceller.cancel(worker.ident)
    worker.join(10)
    assert not worker.is_alive()
    assert canceller.checked_out == 0
    return outcome[0], time.monotonic() - started


def test_a_running_sqlite_statement_is_interrupted(tmp_path: Path) -> None:
    """A long SQLite statement ends within a second of cancel()."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}", 5.0)
    try:
        error, seconds = run_cancelled(engine, SLOW_SQLITE)
    finally:
        engine.dispose()
    assert error is not None and "interrupt" in str(error)
    assert seconds < 1.5


def test_a_waiting_postgres_statement_is_cut_off() -> None:
    """A PostgreSQL statement waiting for its answer ends within a second of cancel()
    (the server's statement_timeout would let it wait 10 s)."""
    with postgres_database() as url:
        engine = create_engine(url, 10.0)
        try:
            error, seconds = run_cancelled(engine, "SELECT pg_sleep(5)")
        finally:
            engine.dispose()
    assert error is not None
    assert seconds < 1.5


def test_connections_returned_by_another_thread_are_forgotten(tmp_path: Path) -> None:
    """A connection checked out by one thread and returned by another is not held."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}", 5.0)
    canceller = Canceller()
    canceller.attach(engine)
    lent: list[object] = []
    try:
        taker = threading.Thread(target=lambda: lent.append(engine.raw_connection()))
        taker.start()
        taker.join()
        assert canceller.checked_out == 1
        lent.pop().close()  # type: ignore[attr-defined]
        assert canceller.checked_out == 0
    finally:
        engine.dispose()


def test_cancelling_an_idle_thread_marks_it_only() -> None:
    """cancel() of a thread holding nothing aborts nothing; clear() forgets the mark."""
    canceller = Canceller()
    canceller.cancel(threading.get_ident())
    assert canceller.cancelled()
    canceller.clear(threading.get_ident())
    assert not canceller.cancelled()
