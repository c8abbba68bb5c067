"""Callers keep being verified while a large accounts import runs (SQLite, PostgreSQL).

Bound proved: during an ``ivr accounts import`` of IMPORT_ROWS accounts in another
process, every call placed on the same PIN store is identified (none routed
``unavailable`` for "database is locked" or a timeout): the import writes in short
transactions of a chunk each, and SQLite runs in WAL mode, so a PIN check never waits
for more than one chunk's commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.config import Settings
from tests.conftest import ACCOUNTS, PEPPER, SINGLE_OWNER
from tests.fleet.postgres import postgres_database
from tests.measured import report
from tests.twilio_phone import Call, parse_task

IMPORT_ROWS = 100_000
PIN_ANNA = ACCOUNTS[0][3]
STORES = {"sqlite": "SQLite", "postgr": "PostgreSQL"}


def big_csv(path: Path) -> Path:
    """IMPORT_ROWS valid accounts, each with one mobile number."""
    with path.open("w", encoding="utf-8") as out:
        out.write("customer_number,name,phones,pin\n")
        for i in range(IMPORT_ROWS):
            out.write(f"{6_000_000 + i},Kunde {i},+49151{i:08d},739201\n")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def overrides(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The PIN store on the test's SQLite file, or in a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_database() as url:
        yield {"pin_store": {"url": url}}


def test_calls_are_verified_during_a_large_import(
    phone: Callable[..., Call], settings: Settings, tmp_path: Path
) -> None:
    """Calls placed while another process imports 100,000 accounts into the same store
    (SQLite or PostgreSQL) are all identified."""
    config = tmp_path / "import.toml"
    config.write_text(f'[pin_store]\nurl = "{settings.pin_store.url}"\npepper = "{PEPPER}"\n'
                      '[routing]\nnumber = "+4930123456"\n', encoding="utf-8")  # fmt: skip
    csv = big_csv(tmp_path / "big.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    ivr = Path(sys.executable).with_name("ivr")
    started = time.monotonic()
    importer = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(ivr), "--config", str(config), "accounts", "import", str(csv)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    outcomes: list[tuple[bool, str]] = []
    try:
        while importer.poll() is None:
            task = parse_task(phone(caller=SINGLE_OWNER).walk("1", PIN_ANNA))
            outcomes.append((task["identified"], task["reason"]))
    finally:
        out, err = importer.communicate(timeout=300)
    seconds = time.monotonic() - started
    assert importer.returncode == 0, err
    assert f"imported {IMPORT_ROWS} accounts" in out
    report(
        f"[import] {IMPORT_ROWS:,} rows into {STORES[settings.pin_store.url[:6]]} in "
        f"{seconds:.1f} s (CLI, validation "
        f"included); {len(outcomes)} calls meanwhile, all identified"
    )
    assert len(outcomes) >= 5, "the import ended before calls could overlap it"
    assert all(outcome == (True, "verified") for outcome in outcomes), outcomes
