"""The benchmark harness runs end to end in its smoke mode (``bench/run --smoke``).

Only the harness is checked here: that it starts everything, drives every target with
valid signed requests and prints every row of the report. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.bench_cli import bench_run

# Rows of the closed-loop and the open-loop tables; in the open-loop one each must have
# answered every request with the TwiML it must give, in time.
TARGET_ROWS = (
    "(a) baseline: constant 300 B TwiML",
    "(b) peer: Twilio sample welcome",
    "(e) floor: the PIN step's I/O @ 10^3 accounts",
    "(c) product menu step @ 10^3 accounts",
    "(d) product PIN step @ 10^3 accounts",
    "product whole-call mix @ 10^3 accounts",
)
ROWS = (
    *TARGET_ROWS,
    "(d) product PIN step @ 10^4 accounts",
    "product whole-call mix @ 10^4 accounts",
    "(c)/(b) menu step / peer",
    "(d)/(b) PIN step / peer",
    "(d)/(a) PIN step / baseline",
    "(d)/(e) PIN step / floor (its I/O only)",
    "(e)/(b) floor / peer",
    "whole-call mix / peer",
    "verification cost at 10^4 accounts / small store",
    "Redis memory per in-flight call",
    "Redis memory per finished call",
    "keys without a TTL",
    "PIN step, right PIN after a wrong one",
    "status callback (completed)",
    "`ivr:call:{*}`",
    "import into SQLite, new accounts",
    "import into SQLite, the same file again (all unchanged)",
    "import into SQLite, --prune",
    "import into PostgreSQL",  # a row per run, or that it was skipped
    "## Open-loop latency (issue 13)",
    "| target / step | 100/s | 300/s | 600/s | answers (all rates) |",
    "product whole-call mix @ 10^3 accounts: PIN step",
    "Generator's own error",
    "### Latency targets at 300 and 600 webhooks/s",
    "## Capacity: highest open-loop rate with p99 <= 50 ms",
    "product whole-call mix @ 10^3 accounts / floor: ",
    "## Overload: whole-call mix at 2x its capacity",
    "- 0 answers past the 2 s deadline: ",
)


def test_smoke_run_prints_every_row(tmp_path: Path) -> None:
    """bench/run --smoke exits 0 (every answer was the expected TwiML) and prints all rows."""
    done = bench_run(tmp_path, "--smoke")
    for row in ROWS:
        assert row in done.stdout, f"missing {row!r} in:\n{done.stdout}"
    assert "unexpected 0" in done.stdout
    open_loop = done.stdout.split("## Open-loop latency", 1)[1]
    for label in TARGET_ROWS:
        row = next(line for line in open_loop.splitlines() if line.startswith(f"| {label} |"))
        assert row.endswith("; unexpected 0; later than 2 s 0 |"), row
    assert (tmp_path / "latest.md").read_text(encoding="utf-8") == done.stdout


def test_fleet_smoke_run_prints_both_modes(tmp_path: Path) -> None:
    """bench/run --fleet --smoke loads one node on one Redis and two nodes on a cluster
    with valid requests only, and prints their ratio and the round trips per topology."""
    done = bench_run(tmp_path, "--fleet", "--smoke")
    for row in ("single: one node, one Redis", "fleet: two nodes, Redis Cluster 3+3",
                "fleet / single: ", "| PIN step, wrong PIN | 3 / 3 | 3 / 3 |"):  # fmt: skip
        assert row in done.stdout, f"missing {row!r} in:\n{done.stdout}"
    assert (tmp_path / "fleet.md").read_text(encoding="utf-8") == done.stdout
