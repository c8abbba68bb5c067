"""The open-loop part of the report: latency per target and step, capacity, overload.

A row per target and step (a floor per step is one more row), a column per rate. The
issue's targets are printed next to the figures (met / not met), never asserted.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.latency import OpenResults, OpenRun, Stats, passes
from bench.plan import CAPACITY_P99_MS, DEADLINE_S, EXPECTED, OPEN_RATES, Target

JUDGED_RATES = (300, 600)  # the latency targets hold at these rates
P99_VS_PEER = 2.0
P999_MS = 10.0
CAPACITY_VS_FLOOR = 0.85
STEP_NAMES = {"start": "/voice", "menu": "menu step", "pin": "PIN step", "status": "status"}


def render(res: OpenResults) -> list[str]:
    """Markdown lines for the open-loop sections."""
    out = ["", "## Open-loop latency (issue 13)", ""]
    out += [
        "ms from each request's *intended* send time (bench/openloop.py, fixed rate, no "
        "coordinated omission): p50 / p99 / p99.9 / max.",
        "",
    ]
    rates = [f"{rate}/s" for rate in OPEN_RATES]
    out += _table(("target / step", *rates, "answers (all rates)"), _latency_rows(res))
    out += ["", *_generator(res)]
    out += ["", "### Latency targets at 300 and 600 webhooks/s", ""]
    out += _table(
        ("step", "rate", "p99 ms", "peer p99 ms", "p99 / peer", "<= 2x peer",
         "p99.9 ms", "<= 10 ms"), _latency_targets(res),
    )  # fmt: skip
    out += ["", f"## Capacity: highest open-loop rate with p99 <= {CAPACITY_P99_MS:g} ms", ""]
    out += _table(("target", "capacity /s", "probes (rate: p99 ms)"), _capacity_rows(res))
    out += ["", *_capacity_ratios(res)]
    if res.overload is not None:
        out += ["", *_overload(res.overload)]
    return out


def _latency_rows(res: OpenResults) -> list[list[str]]:
    rows = []
    for name, target in res.targets.items():
        runs = [res.at(name, rate) for rate in OPEN_RATES]
        rows.append([target.label, *(_cell(r, None) for r in runs), _answers(target, runs)])
        steps = sorted({s for r in runs if r is not None for s in r.steps})
        if len(steps) > 1:  # a mix: each webhook of it, as a sub-row
            for step in steps:
                label = f"{target.label}: {STEP_NAMES.get(step, step)}"
                rows.append([label, *(_cell(r, step) for r in runs), ""])
    return rows


def _cell(run: OpenRun | None, step: str | None) -> str:
    if run is None:
        return "-"
    stats = run.latency if step is None else run.steps.get(step)
    return "-" if stats is None else stats.cell()


def _answers(target: Target, runs: Sequence[OpenRun | None]) -> str:
    classes: dict[str, int] = {}
    late = 0
    for run in runs:
        if run is not None:
            late += run.late
            for name, n in run.classes.items():
                classes[name] = classes.get(name, 0) + n
    unexpected = sum(n for c, n in classes.items() if c not in EXPECTED[target.kind])
    parts = ", ".join(f"{name} {n}" for name, n in sorted(classes.items()))
    return f"{parts}; unexpected {unexpected}; later than {DEADLINE_S:g} s {late}"


def _generator(res: OpenResults) -> list[str]:
    """How far the generator itself was from its schedule, against the bare baseline."""
    lines = ["Generator's own error (dispatch lag behind the intended send time, and its "
             "CPU), against the bare baseline app:", ""]  # fmt: skip
    for rate in OPEN_RATES:
        run = res.at("baseline", rate)
        if run is None:
            continue
        lines.append(
            f"- {rate}/s: sent {run.sent:,} in {run.send_s:.2f} s "
            f"({run.sent / run.send_s:,.0f}/s), lag p50 {run.lag.p50:.2f} / p99 "
            f"{run.lag.p99:.2f} / max {run.lag.max:.1f} ms, own CPU "
            f"{100 * run.cpu_s / run.send_s:.0f} % of a core, baseline p99 "
            f"{run.latency.p99:.1f} ms, {run.peak_connections} connections"
        )
    worst = max(res.runs, key=lambda r: r.lag.p99, default=None)
    if worst is not None:
        lines.append(f"- worst lag p99 of all runs: {worst.lag.p99:.2f} ms "
                     f"({worst.target} at {worst.rate:,.0f}/s)")  # fmt: skip
    return lines


def _latency_targets(res: OpenResults) -> list[list[str]]:
    rows = []
    for name, target in res.targets.items():
        if not target.product:
            continue
        for rate in JUDGED_RATES:
            run, peer = res.at(name, rate), res.at("peer", rate)
            if run is None or peer is None:
                continue
            ratio = run.latency.p99 / peer.latency.p99
            rows.append([
                target.label, f"{rate}/s", f"{run.latency.p99:.1f}", f"{peer.latency.p99:.1f}",
                f"{ratio:.2f}x", _met(ratio <= P99_VS_PEER), f"{run.latency.p999:.1f}",
                _met(run.latency.p999 <= P999_MS),
            ])  # fmt: skip
    return rows


def _capacity_rows(res: OpenResults) -> list[list[str]]:
    rows = []
    for name, cap in res.capacities.items():
        probes = ", ".join(
            f"{p.rate:,.0f}: {_p99(p.latency)}{'' if passes(p) else ' (fail)'}" for p in cap.probes
        )
        shown = f"{cap.rate:,.0f}" + (" (search cut short)" if cap.cut_short else "")
        rows.append([res.targets[name].label, shown, probes])
    return rows


def _p99(stats: Stats) -> str:
    return f"{stats.p99:.1f}"


def _capacity_ratios(res: OpenResults) -> list[str]:
    floor = res.capacities.get("floor")
    lines = []
    for name in ("mix", "pin"):
        cap = res.capacities.get(name)
        if cap is None or floor is None or floor.rate == 0:
            continue
        ratio = cap.rate / floor.rate
        target = f"target >= {CAPACITY_VS_FLOOR}x" if name == "mix" else "for comparison"
        met = f": {_met(ratio >= CAPACITY_VS_FLOOR)}" if name == "mix" else ""
        lines.append(f"- {res.targets[name].label} / floor: {ratio:.2f}x ({target}{met})")
    return lines


def _overload(run: OpenRun) -> list[str]:
    # A share of webhooks, not of calls: the mix's requests are made in advance, so a
    # call whose webhook was shed still sends its later ones (Twilio would not: the shed
    # answer routed the caller), and they are answered unavailable as stale steps.
    unavailable = run.count("unavailable")
    errors = run.server_errors + run.failed
    return [
        f"## Overload: whole-call mix at 2x its capacity, {run.rate:,.0f}/s for {run.seconds:g} s",
        "",
        *_table(
            (
                "webhooks sent",
                "5xx",
                "no answer",
                f"later than {DEADLINE_S:g} s",
                "routed unavailable",
                "of webhooks",
                "p50 / p99 / p99.9 / max ms",
            ),
            [
                [
                    f"{run.sent:,}",
                    f"{run.server_errors}",
                    f"{run.failed}",
                    f"{run.late}",
                    f"{unavailable}",
                    f"{100 * unavailable / max(run.sent, 1):.1f} %",
                    run.latency.cell(),
                ]
            ],
        ),  # fmt: skip
        "",
        f"- 0 errors (5xx or no answer): {_met(errors == 0)} ({errors})",
        f"- 0 answers past the {DEADLINE_S:g} s deadline: {_met(run.late == 0)} ({run.late})",
        "- answers: " + ", ".join(f"{c} {n}" for c, n in sorted(run.classes.items())),
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
