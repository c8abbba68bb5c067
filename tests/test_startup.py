"""Start-up work that needs a dependency is retried until it is done."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.exceptions import DependencyError
from ivr.startup import Deferred
from ivr.store.hashing import PinHasher
from ivr.store.pins import PinStore

HASHER = PinHasher({"k1": b"pepper-0123456789abcdef"}, "k1")


@pytest.fixture
def unmounted(tmp_path: Path) -> Iterator[PinStore]:
    """A PIN store whose SQLite file's directory does not exist yet."""
    store = PinStore.connect(f"sqlite:///{tmp_path / 'volume' / 'pins.sqlite3'}", HASHER)
    yield store
    store.close()


def test_a_failed_task_stays_pending_and_is_done_once(unmounted: PinStore, tmp_path: Path) -> None:
    """attempt() reports the dependency's error and keeps the task; once the database is
    there the task runs, and later attempts do not run it again."""
    runs: list[str] = []

    def tables() -> None:
        unmounted.create_tables()
        runs.append("tables")

    deferred = Deferred({"tables": tables})
    assert isinstance(deferred.attempt(), DependencyError)
    assert deferred.pending == ("tables",)
    (tmp_path / "volume").mkdir()
    assert deferred.attempt() is None and deferred.attempt() is None
    assert runs == ["tables"]
    assert not deferred.pending


def test_the_background_thread_finishes_the_start(unmounted: PinStore, tmp_path: Path) -> None:
    """Without anyone asking, the pending tables are created soon after the database
    becomes reachable."""
    deferred = Deferred({"tables": unmounted.create_tables}, retry_s=0.05)
    assert deferred.attempt() is not None
    deferred.retry_in_background()
    try:
        (tmp_path / "volume").mkdir()
        until = time.monotonic() + 5
        while deferred.pending and time.monotonic() < until:
            time.sleep(0.02)
        assert not deferred.pending
        assert "accounts" in sa.inspect(unmounted.engine).get_table_names()
    finally:
        deferred.close()
