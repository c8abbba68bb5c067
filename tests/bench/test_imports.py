"""The import part of the benchmark (bench/imports.py) runs every step and reports a
PostgreSQL it cannot reach as skipped; no figure is judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.imports import measure
from tests.redis_server import free_port


def test_an_unreachable_postgres_is_reported_as_skipped(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no PostgreSQL answering, the three SQLite runs are reported and PostgreSQL
    is named as skipped, with the reason."""
    monkeypatch.setenv(
        "IVR_TEST_POSTGRES_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    )
    lines = measure(20, tmp_path, redis_url)
    runs = [line.split(" | ")[0].removeprefix("| ") for line in lines if "| import into" in line]
    assert runs == [
        "import into SQLite, new accounts",
        "import into SQLite, the same file again (all unchanged)",
        "import into SQLite, --prune, 2 not in the file deleted",
    ]
    assert lines[-1].startswith("import into PostgreSQL: skipped (no database on PostgreSQL at")
