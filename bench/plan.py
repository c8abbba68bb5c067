"""What one benchmark run does: targets, durations, load and server settings (values only)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Kind(str, Enum):
    """What a target's requests are, which decides how they are generated and judged."""

    BASELINE = "baseline"  # constant TwiML; the same signed webhook body, cycled
    PEER = "peer"  # Twilio's sample welcome step; cycled
    FLOOR = "floor"  # the PIN step's I/O only (bench/floor_app.py); PIN requests, cycled
    FLOOR_MENU = "floor_menu"  # the menu step's I/O only; a prepared floor call each
    MENU = "menu"  # product: a call at the menu presses 1 (caller lookup, PIN prompt)
    PIN = "pin"  # product: a call at the PIN prompt enters a wrong or the right PIN
    MIX = "mix"  # product: whole calls, /voice to status callback, every webhook


class Store(str, Enum):
    """Which PIN store a product target runs against."""

    NONE = "none"
    SMALL = "small"
    LARGE = "large"


# The product's own steps; every other kind is a reference app.
PRODUCT_KINDS = frozenset({Kind.MENU, Kind.PIN, Kind.MIX})

# Answers a target may give; anything else makes the run invalid (see bench/wrk/replay.lua).
EXPECTED: dict[Kind, frozenset[str]] = {
    Kind.BASELINE: frozenset({"gather"}),
    Kind.PEER: frozenset({"gather"}),
    Kind.FLOOR: frozenset({"gather", "verified"}),
    Kind.FLOOR_MENU: frozenset({"gather"}),
    Kind.MENU: frozenset({"gather"}),
    Kind.PIN: frozenset({"gather", "verified"}),
    Kind.MIX: frozenset({"gather", "verified", "no_content"}),
}


@dataclass(frozen=True)
class Target:
    """One row of the results table."""

    name: str
    kind: Kind
    store: Store
    label: str

    @property
    def replayable(self) -> bool:
        """These reference apps refuse no replay, so their few requests may be cycled
        (the menu floor, like the product, refuses a replayed step)."""
        return self.kind in {Kind.BASELINE, Kind.PEER, Kind.FLOOR}

    @property
    def product(self) -> bool:
        """A step of the product (not a reference app)."""
        return self.kind in PRODUCT_KINDS


CONNECTIONS = 32  # wrk's keep-alive connections, for every target
WORKERS = 2

# The README's production line, exactly (tests/bench/test_plan.py holds them together):
# the same settings serve baseline, peer, floor and product. The benchmark once added
# --worker-connections 16 to split wrk's 32 long-lived connections evenly; it capped each
# worker at 16 connections, and open-loop it gave even the peer a 200+ ms p99 at 100
# req/s (issue 13), so it is gone: every target runs as production does. The production
# line's 10,000 connections per worker (ivr/serving.py says why) change nothing below
# capacity: they let an overload's excess reach the worker, which sheds it.
PRODUCTION_ARGS: tuple[str, ...] = (
    "--worker-class", "ivr.serving.ThreadWorker", "--workers", str(WORKERS), "--threads", "8",
    "--worker-connections", "10000",
)  # fmt: skip
GUNICORN_ARGS: tuple[str, ...] = PRODUCTION_ARGS

# Open-loop targets (bench/latency.py), a row each, in this order: a floor per step slots
# in by name (floor_menu only where bench/floor_requests.py exists).
OPEN_TARGETS: tuple[str, ...] = ("baseline", "peer", "floor", "floor_menu", "menu", "pin", "mix")
OPEN_RATES: tuple[int, ...] = (100, 300, 600)  # webhooks/s: a hotline's rates (issue 13)
CAPACITY_P99_MS = 50.0  # capacity: the highest rate whose p99 stays within this
DEADLINE_S = 2.0  # the webhook deadline: an answer later than this counts as late


@dataclass(frozen=True)
class Plan:
    """Durations, sizes and load shape of one run."""

    smoke: bool
    small_accounts: int
    large_accounts: int
    warmup_s: int
    measure_s: int
    rounds: int
    connections: int
    wrk_threads: int
    # First guess of a product step's rate, used only to size the warm-up's requests.
    guess_rps: int
    memory_calls: int
    trip_samples: int
    profile_s: int = 20
    # Open loop: seconds per (target, rate) point, per capacity probe, and of the overload.
    open_s: float = 20.0
    probe_s: float = 5.0
    max_probes: int = 12
    overload_s: float = 30.0
    # Rows of the generated file ``ivr accounts import`` is measured with (bench/imports.py).
    import_rows: int = 200_000

    @property
    def large_label(self) -> str:
        return _power_label(self.large_accounts)

    @property
    def small_label(self) -> str:
        return _power_label(self.small_accounts)

    def targets(self) -> tuple[Target, ...]:
        """Every measured target, in the order each round runs them."""
        small, large = self.small_label, self.large_label
        return (
            Target("baseline", Kind.BASELINE, Store.NONE, "(a) baseline: constant 300 B TwiML"),
            Target("peer", Kind.PEER, Store.NONE, "(b) peer: Twilio sample welcome"),
            Target("floor", Kind.FLOOR, Store.SMALL, f"(e) floor: the PIN step's I/O @ {small}"),
            Target("menu", Kind.MENU, Store.SMALL, f"(c) product menu step @ {small}"),
            Target("pin", Kind.PIN, Store.SMALL, f"(d) product PIN step @ {small}"),
            Target("mix", Kind.MIX, Store.SMALL, f"product whole-call mix @ {small}"),
            Target("pin_large", Kind.PIN, Store.LARGE, f"(d) product PIN step @ {large}"),
            Target("mix_large", Kind.MIX, Store.LARGE, f"product whole-call mix @ {large}"),
        )

    def open_targets(self, *, floor_menu: bool) -> tuple[Target, ...]:
        """The open-loop rows, in table order (the menu floor's only if it exists)."""
        label = f"floor: the menu step's I/O @ {self.small_label}"
        extra = (Target("floor_menu", Kind.FLOOR_MENU, Store.SMALL, label),) if floor_menu else ()
        found = {t.name: t for t in (*self.targets(), *extra)}
        return tuple(found[name] for name in OPEN_TARGETS if name in found)


def full_plan(wrk_threads: int = 1) -> Plan:
    """The real benchmark: 10^3 and 10^6 accounts, 3 rounds of 15 s per target."""
    return Plan(
        smoke=False,
        small_accounts=1_000,
        large_accounts=1_000_000,
        warmup_s=5,
        measure_s=15,
        rounds=3,
        connections=CONNECTIONS,
        wrk_threads=wrk_threads,
        guess_rps=1_000,
        memory_calls=2_000,
        trip_samples=50,
    )


def smoke_plan(wrk_threads: int = 1) -> Plan:
    """A quick end-to-end check of the harness itself; its numbers mean little.

    The full plan, cut down: 10^4 large accounts, no warm-ups (bench/driver.py), one
    round of 1 s per target, open-loop points of 0.3 s, two capacity probes, 0.5 s of
    overload, imports of 2,000 rows.
    """
    return replace(
        full_plan(wrk_threads),
        smoke=True,
        large_accounts=10_000,
        warmup_s=1,
        measure_s=1,
        rounds=1,
        guess_rps=1_500,
        memory_calls=200,
        trip_samples=5,
        profile_s=5,
        import_rows=2_000,
        open_s=0.3,
        probe_s=0.3,
        max_probes=2,
        overload_s=0.5,
    )


def _power_label(count: int) -> str:
    exponent = len(str(count)) - 1
    if count == 10**exponent:
        return f"10^{exponent} accounts"
    return f"{count:,} accounts"
