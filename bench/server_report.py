"""The report of ``bench/run --servers``: each round, the medians, and the verdict.

Noise is measured, not assumed: a measure's spread is max - min over its rounds. A model
is better (or worse) than the production line on a measure *beyond the noise* only when
the two medians differ by more than either one's spread; it *wins* when it is better
beyond the noise on some measure and worse beyond the noise on none.

Overload (the mix at twice each model's median capacity, one run each) is judged by the
issue's target, not by noise: every webhook answered, none after the deadline. A model
that misses it where the production line meets it is worse on it (and the reverse).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

from bench.latency import OpenRun, passes
from bench.latency_report import JUDGED_RATES
from bench.plan import CAPACITY_P99_MS, DEADLINE_S, Plan
from bench.report import _table

if TYPE_CHECKING:
    from bench.server_models import Model, Round

BASE = "production"
OVERLOAD = "overload: every answer within the deadline"
NAMES = {"peer": "peer", "pin": "PIN step", "mix": "whole-call mix", "floor": "PIN floor"}


@dataclass(frozen=True)
class Measure:
    """One figure per round and model, and which way is better."""

    label: str
    value: Callable[[Round], float]
    higher_is_better: bool
    fmt: str


def _p99(name: str, rate: int) -> Callable[[Round], float]:
    return lambda r: r.runs[name, rate].latency.p99


def _capacity(name: str) -> Callable[[Round], float]:
    return lambda r: r.capacities[name].rate


def _ratio(r: Round) -> float:
    floor = r.capacities["floor"].rate
    return r.capacities["mix"].rate / floor if floor else math.nan


MEASURES = (
    Measure("whole-call mix capacity /s", _capacity("mix"), True, ",.0f"),
    Measure("PIN floor capacity /s", _capacity("floor"), True, ",.0f"),
    Measure("mix / floor capacity", _ratio, True, ".2f"),
    *(
        Measure(f"{NAMES[name]} p99 ms @ {rate}/s", _p99(name, rate), False, ".1f")
        for name in ("pin", "mix")
        for rate in JUDGED_RATES
    ),
)


def render(
    plan: Plan,
    models: Sequence[Model],
    meta: list[tuple[str, str]],
    rounds: list[Round],
    overloads: dict[str, OpenRun | None],
) -> str:
    """The whole report as Markdown (also what the command prints)."""
    out = ["# Service-PIN IVR: server and worker models (issue 13, item 5)", ""]
    out += [f"- {name}: {value}" for name, value in meta]
    out += ["", "## Models", ""]
    out += _table(("model", "what", "command line (each app; PORT and LOG per server)"),
                  [(m.name, m.label, f"`{m.shown()}`") for m in models])  # fmt: skip
    out += ["", "## Medians of the rounds", ""]
    out += ["Open loop, ms from each request's intended send time: p50 / p99 / p99.9. "
            f"Capacity: the highest rate with p99 <= {CAPACITY_P99_MS:g} ms.", ""]  # fmt: skip
    by_model = {m.name: [r for r in rounds if r.model == m.name] for m in models}
    out += _table(("measure", *by_model), _medians(by_model))
    out += ["", "## Each round", ""]
    out += _table(
        ("round", "model", *_latency_headers(), "mix capacity /s", "floor capacity /s",
         "mix / floor"),
        [(str(r.number), r.model, *_latency_cells(r), *(_fmt(m, m.value(r)) for m in MEASURES[:3]))
         for r in rounds],
    )  # fmt: skip
    out += ["", "Capacity probes (rate: p99 ms):", ""]
    out += [f"- round {r.number}, {r.model}, {NAMES[name]}: {_probes(r, name)}"
            for r in rounds for name in r.capacities]  # fmt: skip
    out += ["", "## Overload: the mix at twice each model's median capacity", ""]
    out += _table(("model", "rate /s", "sent", "5xx", "no answer", f"later than {DEADLINE_S:g} s",
                   "routed unavailable", "p50 / p99 / p99.9 / max ms"),
                  [_overload_row(name, run) for name, run in overloads.items()])  # fmt: skip
    out += ["", "## Against the production line: beyond the noise?", ""]
    out += ["Spread: max - min of a measure over the rounds. Beyond the noise: the medians "
            "differ by more than either model's spread.", ""]  # fmt: skip
    base = by_model.get(BASE, [])
    for name, mine in by_model.items():
        if name != BASE and base:
            out += _versus(name, base, mine, _overload_verdict(overloads, name))
    return "\n".join(out) + "\n"


def _latency_headers() -> list[str]:
    return [f"{NAMES[n]} @ {rate}/s" for rate in JUDGED_RATES for n in ("peer", "pin", "mix")]


def _latency_cells(r: Round) -> list[str]:
    cells = []
    for rate in JUDGED_RATES:
        for name in ("peer", "pin", "mix"):
            s = r.runs[name, rate].latency
            cells.append(f"{s.p50:.1f} / {s.p99:.1f} / {s.p999:.1f}")
    return cells


def _medians(by_model: dict[str, list[Round]]) -> list[list[str]]:
    rows = []
    for rate in JUDGED_RATES:
        for name in ("peer", "pin", "mix"):
            row = [f"{NAMES[name]} @ {rate}/s"]
            for rounds in by_model.values():
                stats = [r.runs[name, rate].latency for r in rounds]
                row.append(" / ".join(f"{median(getattr(s, p) for s in stats):.1f}"
                                      for p in ("p50", "p99", "p999")))  # fmt: skip
            rows.append(row)
    for m in MEASURES[:3]:
        rows.append([m.label, *(_fmt(m, _median(m, rounds)) for rounds in by_model.values())])
    rows.append(["wrong answers / unanswered (errors) / wrong past capacity",
                 *(f"{sum(r.wrong for r in rs)} / {sum(r.unanswered for r in rs)} / "
                   f"{sum(r.wrong_past for r in rs)}" for rs in by_model.values())])  # fmt: skip
    return rows


def _overload_row(name: str, run: OpenRun | None) -> list[str]:
    if run is None:
        return [name, "-", "-", "-", "-", "-", "-", "no capacity measured"]
    return [name, f"{run.rate:,.0f}", f"{run.sent:,}", str(run.server_errors), str(run.failed),
            str(run.late), f"{run.count('unavailable'):,}", run.latency.cell()]  # fmt: skip


def overload_met(run: OpenRun | None) -> bool | None:
    """The overload target: no 5xx, every webhook answered, none after the deadline."""
    if run is None:
        return None
    return run.server_errors == 0 and run.failed == 0 and run.late == 0


def _overload_verdict(overloads: dict[str, OpenRun | None], name: str) -> list[str]:
    """The overload row of ``name``'s comparison: its cells and its verdict."""
    base, mine = overload_met(overloads.get(BASE)), overload_met(overloads.get(name))
    shown = {True: "met", False: "missed", None: "-"}
    verdict = "-" if base is None or mine is None or base == mine else (
        "better" if mine else "worse")  # fmt: skip
    return [OVERLOAD, shown[base], shown[mine], verdict]


def _versus(name: str, base: list[Round], mine: list[Round], overload: list[str]) -> list[str]:
    rows: list[list[str]] = []
    better: list[str] = [OVERLOAD] if overload[3] == "better" else []
    worse: list[str] = [OVERLOAD] if overload[3] == "worse" else []
    for m in MEASURES:
        a, b = [m.value(r) for r in base], [m.value(r) for r in mine]
        verdict = _verdict(a, b, m.higher_is_better)
        (better if verdict == "better" else worse if verdict == "worse" else []).append(m.label)
        rows.append([m.label, _with_spread(m, a), _with_spread(m, b), verdict])
    rows.append(overload)
    wins = bool(better) and not worse
    summary = f"**{name}: wins beyond the noise**" if wins else f"**{name}: does not win**"
    detail = f"better on {', '.join(better) or 'nothing'}; worse on {', '.join(worse) or 'nothing'}"
    return [f"### {name} vs. {BASE}", "",
            *_table(("measure", f"{BASE} median (spread)", f"{name} median (spread)",
                     f"{name} beyond the noise"), rows),
            "", f"{summary} ({detail}).", ""]  # fmt: skip


def _verdict(base: list[float], other: list[float], higher_is_better: bool) -> str:
    """better / worse beyond the noise, or within it ('-' when a figure is missing)."""
    if not base or not other or any(math.isnan(x) for x in (*base, *other)):
        return "-"
    gain = median(other) - median(base)
    gain = gain if higher_is_better else -gain
    noise = max(max(base) - min(base), max(other) - min(other))
    if gain > noise:
        return "better"
    if -gain > noise:
        return "worse"
    return "within the noise"


def _median(m: Measure, rounds: list[Round]) -> float:
    values = [m.value(r) for r in rounds]
    return math.nan if not values or any(math.isnan(v) for v in values) else median(values)


def _with_spread(m: Measure, values: list[float]) -> str:
    if not values or any(math.isnan(v) for v in values):
        return "-"
    return f"{format(median(values), m.fmt)} ({format(max(values) - min(values), m.fmt)})"


def _fmt(m: Measure, value: float) -> str:
    return "-" if math.isnan(value) else format(value, m.fmt)


def _probes(r: Round, name: str) -> str:
    cap = r.capacities[name]
    probes = ", ".join(f"{p.rate:,.0f}: {p.latency.p99:.1f}{'' if passes(p) else ' (fail)'}"
                       for p in cap.probes)  # fmt: skip
    return probes + (" (search cut short)" if cap.cut_short else "")
