"""The results table: medians of the rounds, ratios to the peer and baseline, Redis facts.

Only ratios are judged against the issue's targets; absolute numbers are printed for
context and depend on the machine (and on whatever else runs on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from bench.keys import KeyGroup
from bench.latency import OpenResults
from bench.latency_report import render as render_open
from bench.load import Measurement
from bench.plan import EXPECTED, Target
from bench.probe import Memory, Trips


@dataclass(frozen=True)
class Row:
    """One target's rounds, summarised."""

    target: Target
    rounds: Sequence[Measurement]

    @property
    def rps(self) -> float:
        return median(m.rps for m in self.rounds)

    @property
    def p50_ms(self) -> float:
        return median(m.p50_ms for m in self.rounds)

    @property
    def p99_ms(self) -> float:
        return median(m.p99_ms for m in self.rounds)

    @property
    def answers(self) -> int:
        return sum(sum(m.classes.values()) for m in self.rounds)

    @property
    def unexpected(self) -> int:
        """Answers that are not the TwiML this target must produce, plus socket errors."""
        allowed = EXPECTED[self.target.kind]
        wrong = sum(n for m in self.rounds for c, n in m.classes.items() if c not in allowed)
        return wrong + sum(m.errors for m in self.rounds)

    def answer_summary(self) -> str:
        classes: dict[str, int] = {}
        for m in self.rounds:
            for name, n in m.classes.items():
                classes[name] = classes.get(name, 0) + n
        parts = ", ".join(f"{name} {n}" for name, n in sorted(classes.items()))
        return f"{parts}; unexpected {self.unexpected}"


@dataclass
class Results:
    """Everything one run found, ready to render."""

    meta: list[tuple[str, str]]
    rows: dict[str, Row]
    trips: list[Trips] = field(default_factory=list)
    memory: Memory | None = None
    finished_bytes: float | None = None
    keys: list[KeyGroup] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # Markdown (bench/imports.py)
    open: OpenResults | None = None  # open-loop latency, capacity, overload

    def ratio(self, top: str, bottom: str) -> float:
        return self.rows[top].rps / self.rows[bottom].rps

    @property
    def invalid(self) -> int:
        return sum(row.unexpected for row in self.rows.values())

    def product_rows(self) -> list[Row]:
        return [r for r in self.rows.values() if r.target.product]


def render(res: Results) -> str:
    """The whole report as Markdown (also what the command prints)."""
    out = ["# Service-PIN IVR benchmark", ""]
    out += [f"- {name}: {value}" for name, value in res.meta]
    out += ["", "## Closed loop: throughput and latency (median of the rounds)", ""]
    out += _table(
        ("target", "req/s", "p50 ms", "p99 ms", "req/s per round", "answers"),
        [
            (
                row.target.label,
                f"{row.rps:,.0f}",
                f"{row.p50_ms:.1f}",
                f"{row.p99_ms:.1f}",
                " / ".join(f"{m.rps:,.0f}" for m in row.rounds),
                row.answer_summary(),
            )  # fmt: skip
            for row in res.rows.values()
        ],
    )
    out += ["", "## Ratios and targets (issue 5)", ""]
    out += _table(("measure", "value", "target", "met"), _targets(res))
    if res.open is not None:
        out += render_open(res.open)
    out += ["", "## Redis round trips per webhook (in-process, counted at the client)", ""]
    out += _table(
        ("webhook", "round trips", "commands"),
        [(t.webhook, f"{t.round_trips:g}", f"{t.commands:g}") for t in res.trips],
    )
    if res.memory is not None:
        out += ["", f"## Redis memory per in-flight call ({res.memory.calls:,} calls)", ""]
        out += [f"used_memory delta per call: {res.memory.bytes_per_call:,.0f} B", ""]
        if res.finished_bytes is not None:
            out += [f"kept per finished call (jobs done, state not yet expired): "
                    f"{res.finished_bytes:,.0f} B", ""]  # fmt: skip
        out += _table(
            ("key pattern", "MEMORY USAGE per call, B"),
            [(f"`{name}`", f"{size:,}") for name, size in res.memory.key_bytes.items()],
        )
    out += ["", "## Keys left in Redis and their TTLs", ""]
    out += _table(
        ("key pattern", "keys", "without TTL", "TTL min..max s"),
        [
            (f"`{g.pattern}`", f"{g.keys:,}", f"{g.without_ttl:,}", f"{g.min_ttl}..{g.max_ttl}")
            for g in res.keys
        ],
    )
    return "\n".join(out + res.imports) + "\n"


def _targets(res: Results) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def add(measure: str, value: float, target: str, met: bool | None, unit: str = "x") -> None:
        if unit == "x":
            shown = f"{value:.2f}x"
        else:
            shown = f"{value:,.1f} {unit}" if unit == "ms" else f"{value:,.0f} {unit}"
        rows.append((measure, shown, target or "-", {None: "-", True: "yes", False: "no"}[met]))

    add("(c)/(b) menu step / peer", res.ratio("menu", "peer"), "", None)
    pin = res.ratio("pin", "peer")
    add("(d)/(b) PIN step / peer", pin, ">= 0.8x", pin >= 0.8)
    add("(d)/(a) PIN step / baseline", res.ratio("pin", "baseline"), "", None)
    add("(d)/(e) PIN step / floor (its I/O only)", res.ratio("pin", "floor"), "", None)
    add("(e)/(b) floor / peer", res.ratio("floor", "peer"), "", None)
    mix = res.ratio("mix", "peer")
    add("whole-call mix / peer", mix, ">= 1.0x", mix >= 1.0)
    large = res.rows["pin_large"].target.label.split("@ ")[-1]
    cost = res.ratio("pin", "pin_large")  # cost per request = 1 / throughput
    add(f"verification cost at {large} / small store (req/s)", cost, "<= 1.1x", cost <= 1.1)
    p50 = res.rows["pin_large"].p50_ms / res.rows["pin"].p50_ms
    add(f"verification cost at {large} / small store (p50)", p50, "<= 1.1x", p50 <= 1.1)
    worst = max(res.product_rows(), key=lambda r: r.p99_ms)
    p99 = worst.p99_ms
    add(f"worst product p99 ({worst.target.name}, 32 conn.)", p99, "<= 25 ms", p99 <= 25, "ms")
    if res.memory is not None:
        per_call = res.memory.bytes_per_call
        add("Redis memory per in-flight call", per_call, "<= 1024 B", per_call <= 1024, "B")
    if res.finished_bytes is not None:
        kept = res.finished_bytes
        add("Redis memory per finished call", kept, "<= 1024 B", kept <= 1024, "B")
    missing = sum(g.without_ttl for g in res.keys)
    add("keys without a TTL", missing, "0", missing == 0, "keys")
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
