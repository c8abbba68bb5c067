"""``ivr audit export`` / ``purge`` through click's CliRunner, on a SQLite audit trail."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli.audit import audit
from ivr.config import PinStoreSettings, Settings
from ivr.store.audit import AuditStore
from ivr.store.pins import create_engine
from tests.cli.helpers import assert_one_line_error
from tests.redis_server import free_port

PEPPER = "cli-test-pepper-0123456789"
CALL = "CA" + "6" * 32
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HEADER = ["at", "call_sid", "customer_number", "caller", "outcome", "actor", "source"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose database is a SQLite file in tmp_path (no Redis needed)."""
    return Settings(pin_store=PinStoreSettings(url=f"sqlite:///{tmp_path / 'p.db'}", pepper=PEPPER))


@pytest.fixture
def store(settings: Settings) -> Iterator[AuditStore]:
    """The audit trail with an old attempt, two in November and an unlock."""
    store = AuditStore(create_engine(settings.pin_store.url, 2.0))
    store.create_tables()
    store.record_attempt(
        CALL, "1001", "+4930111111", "wrong", T0 - timedelta(days=40), attempt_id="o"
    )
    store.record_attempt(CALL, "1001", "+4930111111", "wrong", T0, attempt_id="a")
    store.record_attempt(CALL, "1001", None, "locked", T0 + timedelta(minutes=1), attempt_id="b")
    store.record_unlock("1001", "=HYPERLINK(1)", "cli", at=T0 + timedelta(hours=1))
    yield store
    store.close()


def invoke(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(audit, list(args), obj=settings)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_export_to_stdout(settings: Settings, store: AuditStore) -> None:
    """Rows since the date, oldest first, with the documented header; unlocks carry the actor."""
    result = invoke(settings, "export", "--since", "2026-11-01")
    assert result.exit_code == 0, result.stderr
    assert rows(result.stdout) == [
        HEADER,
        ["2026-11-01T08:00:00Z", CALL, "1001", "+4930111111", "wrong", "", ""],
        ["2026-11-01T08:01:00Z", CALL, "1001", "", "locked", "", ""],
        ["2026-11-01T09:00:00Z", "", "1001", "", "unlocked", "'=HYPERLINK(1)", "cli"],
    ]


def test_export_since_a_time_with_offset(settings: Settings, store: AuditStore) -> None:
    """--since accepts an ISO time with an offset and compares in UTC."""
    result = invoke(settings, "export", "--since", "2026-11-01T09:00:30+01:00")
    assert [r[4] for r in rows(result.stdout)[1:]] == ["locked", "unlocked"]


def test_export_to_file(settings: Settings, store: AuditStore, tmp_path: Path) -> None:
    """--output writes the CSV to the file and reports the count on stderr."""
    target = tmp_path / "audit.csv"
    result = invoke(settings, "export", "--since", "2026-01-01", "--output", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert "wrote 4 audit rows" in result.stderr
    assert len(rows(target.read_text(encoding="utf-8"))) == 5
    assert not (tmp_path / "audit.csv.partial").exists()


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "01.11.2026", ""])
def test_bad_date_is_one_line(settings: Settings, since: str) -> None:
    """A --since that is not an ISO date or time is one error line, exit 1."""
    assert_one_line_error(invoke(settings, "export", "--since", since), "--since")


def test_missing_since_is_one_line(settings: Settings) -> None:
    """--since is required."""
    assert_one_line_error(invoke(settings, "export"), "--since is required")


def test_unwritable_output_is_one_line(
    settings: Settings, store: AuditStore, tmp_path: Path
) -> None:
    """A file that cannot be written is one error line and leaves nothing behind."""
    target = tmp_path / "missing-dir" / "audit.csv"
    assert_one_line_error(
        invoke(settings, "export", "--since", "2026-11-01", "-o", str(target)), "No such file"
    )
    assert not target.parent.exists()


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """A database that does not answer is one error line naming the audit store."""
    url = f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x"
    down = Settings(pin_store=PinStoreSettings(url=url, pepper=PEPPER, timeout_s=0.5))
    assert_one_line_error(invoke(down, "export", "--since", "2026-11-01"), "audit store failed")


def test_purge_uses_retention(settings: Settings, store: AuditStore) -> None:
    """``ivr audit purge`` removes rows older than retention_days (default 90)."""
    store.record_unlock("1001", "ops", "cli", at=datetime.now(UTC) - timedelta(days=91))
    result = invoke(settings, "purge")
    assert result.exit_code == 0 and "removed 1 audit rows" in result.stdout
    assert store.count() == 4
