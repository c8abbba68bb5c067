"""``ivr accounts import`` measured on SQLite and PostgreSQL, with PIN checks meanwhile.

Per store, three runs of the real command in its own process, as an operator runs it
(``ivr --config … accounts import``: validation, hashing and the chunked writes):

1. a generated file of ``rows`` new accounts (each a name, a mobile number and a PIN
   that passes the PIN rules) — the issue's figure: 200,000 rows, target < 20 s on
   SQLite and < 40 s on PostgreSQL;
2. the same file again: every row unchanged (a daily full-truth sync), nothing written;
3. ``--prune`` with a tenth of the accounts left out of the file: they are deleted, each
   cleaned up first (its lockout cleared in Redis, audited).

Meanwhile this process checks one account's PIN in a loop through the product's
:class:`~ivr.store.pins.PinStore` (the webhooks' read engine, ``[pin_store] timeout_s``
1 s): how many checks, how many failed, the slowest. Figures are printed, never judged
by a test. PostgreSQL runs in a throwaway database on ``$IVR_TEST_POSTGRES_URL`` (or
the machine's server); when none answers, the report says it was skipped.
``python -m bench.imports [--rows N]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql

from bench.driver import progress
from ivr.embedded_redis import running_redis
from ivr.exceptions import DependencyError
from ivr.pin_policy import PinPolicy
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.pins import PinStore
from tests.fleet.postgres import libpq_url, server_url

FULL_ROWS = 200_000
TARGET_S = {"SQLite": 20.0, "PostgreSQL": 40.0}  # for FULL_ROWS, from issue 12
PEPPER = "bench-import-pepper-0123456789abcdef"
FIRST_NUMBER = 70_000_000
# The account whose PIN is checked during the runs; it is in every file.
PROBE_NUMBER, PROBE_PHONE, PROBE_PIN = "69999999", "+4930999999", "480213"
PROBE = ImportRow(2, PROBE_NUMBER, "Probe Account", (PROBE_PHONE,), PROBE_PIN)


@dataclass(frozen=True)
class Checks:
    """PIN checks made while one import ran."""

    count: int
    failed: int
    slowest_ms: float

    def summary(self) -> str:
        verdict = "all verified" if not self.failed else f"{self.failed:,} failed"
        return f"{self.count:,}, {verdict}; slowest {self.slowest_ms:,.0f} ms"


@dataclass(frozen=True)
class Run:
    """One run of the command and what it printed."""

    store: str
    label: str
    rows: int
    seconds: float
    target_s: float | None
    checks: Checks

    def cells(self) -> tuple[str, ...]:
        target = "-" if self.target_s is None else f"< {self.target_s:.0f} s"
        met = "-" if self.target_s is None else ("yes" if self.seconds < self.target_s else "no")
        rate = f"{self.rows / self.seconds:,.0f}" if self.rows else "-"
        return (f"import into {self.store}, {self.label}", f"{self.seconds:.1f}", rate,
                target, met, self.checks.summary())  # fmt: skip


def measure(rows: int, work: Path, redis_url: str) -> list[str]:
    """Every run on SQLite and (if reachable) PostgreSQL; the report's Markdown lines."""
    files = _files(rows, work)
    runs = _runs("SQLite", f"sqlite:///{work / 'import.sqlite3'}", rows, files, work, redis_url)
    skipped = ""
    with _postgres() as found:
        if isinstance(found, str):
            skipped = found
        else:
            runs += _runs("PostgreSQL", found.url, rows, files, work, redis_url)
    return render(runs, skipped)


def render(runs: Sequence[Run], skipped: str) -> list[str]:
    """The imports section of the report."""
    out = ["", "## Imports (`ivr accounts import`, issue 12)", ""]
    out += [
        "| run | seconds | rows/s | target | met | PIN checks during the run |",
        "|---|---|---|---|---|---|",
    ]
    out += ["| " + " | ".join(run.cells()) + " |" for run in runs]
    if skipped:
        out += ["", f"import into PostgreSQL: skipped ({skipped})"]
    return out


@dataclass(frozen=True)
class _Files:
    full: Path
    pruned: Path
    left_out: int


def _files(rows: int, work: Path) -> _Files:
    """The file of ``rows`` accounts (plus the probe) and the same without a tenth."""
    pins = _good_pins(PinPolicy(6))
    lines = [f"{FIRST_NUMBER + i},Kunde {i},+49151{i:08d},{pins[i % len(pins)]}\n"
             for i in range(rows)]  # fmt: skip
    probe = f"{PROBE_NUMBER},{PROBE.name},{PROBE_PHONE},{PROBE_PIN}\n"
    header = "customer_number,name,phones,pin\n"
    left_out = rows // 10
    full, pruned = work / "import-full.csv", work / "import-pruned.csv"
    full.write_text(header + probe + "".join(lines), encoding="utf-8")
    pruned.write_text(header + probe + "".join(lines[left_out:]), encoding="utf-8")
    return _Files(full, pruned, left_out)


def _good_pins(policy: PinPolicy, count: int = 1_000) -> list[str]:
    """``count`` scattered PINs that pass the rules (a file of weak PINs would fail)."""
    found: list[str] = []
    candidate = 104_729
    while len(found) < count:
        candidate = (candidate * 7_919 + 1) % 1_000_000
        if policy.problem(f"{candidate:06d}") is None:
            found.append(f"{candidate:06d}")
    return found


def _runs(store: str, url: str, rows: int, files: _Files, work: Path, redis_url: str) -> list[Run]:
    config = work / f"import-{store.lower()}.toml"
    config.write_text(
        f'[pin_store]\nurl = "{url}"\npepper = "{PEPPER}"\n[redis]\nurl = "{redis_url}"\n'
        '[routing]\nnumber = "+4930123456"\n',
        encoding="utf-8",
    )  # fmt: skip
    checker = PinStore.from_url(url, PinHasher({"k1": PEPPER.encode()}, "k1"), timeout_s=1.0)
    try:
        checker.upsert_many([PROBE])
        target = TARGET_S[store] if rows == FULL_ROWS else None
        runs = [
            _run(store, "new accounts", config, [str(files.full)], rows, target, checker,
                 f"imported {rows + 1} accounts ({rows} created, 0 updated, 1 unchanged)"),
            _run(store, "the same file again (all unchanged)", config, [str(files.full)], rows,
                 None, checker, f"(0 created, 0 updated, {rows + 1} unchanged)"),
            _run(store, f"--prune, {files.left_out:,} not in the file deleted", config,
                 ["--prune", str(files.pruned)], 0, None, checker,
                 f"deleted {files.left_out} account(s)"),
        ]  # fmt: skip
    finally:
        checker.close()
    return runs


def _run(
    store: str,
    label: str,
    config: Path,
    args: list[str],
    rows: int,
    target_s: float | None,
    checker: PinStore,
    expect: str,
) -> Run:
    """One command run, timed, with PIN checks in a thread until it ends."""
    progress(f"import into {store}: {label}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    ivr = Path(sys.executable).with_name("ivr")
    stop = threading.Event()
    counts: list[tuple[bool, float]] = []
    thread = threading.Thread(target=_check_until, args=(checker, stop, counts), daemon=True)
    started = time.monotonic()
    thread.start()
    done = subprocess.run(  # noqa: S603 - fixed argv
        [str(ivr), "--config", str(config), "accounts", "import", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    stop.set()
    thread.join()
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"import into {store} ({label}) said: {done.stdout}{done.stderr}")
    failed = sum(1 for ok, _ in counts if not ok)
    slowest = max((ms for _, ms in counts), default=0.0)
    return Run(store, label, rows, seconds, target_s, Checks(len(counts), failed, slowest))


def _check_until(store: PinStore, stop: threading.Event, out: list[tuple[bool, float]]) -> None:
    """Check the probe account's PIN until ``stop``: (verified, milliseconds) each."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            ok = store.check_pin(PROBE_NUMBER, PROBE_PIN) is not None
        except DependencyError:
            ok = False
        out.append((ok, (time.monotonic() - started) * 1000))
        time.sleep(0.005)  # ~150 checks a second, far more than a hotline: a stall shows


@dataclass(frozen=True)
class _Database:
    url: str


@contextmanager
def _postgres() -> Iterator[_Database | str]:
    """A throwaway database on the PostgreSQL server, dropped after; or why there is none."""
    admin = server_url()
    name = f"ivr_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        yield f"no database on PostgreSQL at {admin}: {exc}".splitlines()[0]
        return
    try:
        yield _Database(sa.make_url(admin).set(database=name).render_as_string(hide_password=False))
    finally:
        with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.imports", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="rows per file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-import-") as tmp, running_redis() as server:
        print("\n".join(measure(args.rows, Path(tmp), server.url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
