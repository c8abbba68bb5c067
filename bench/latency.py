"""Open-loop measurements: latency per step at fixed rates, capacity, and overload.

Each run is ``python -m bench.openloop`` in its own process (bench/openloop.py), fed a
file of signed requests made for it: a product target gets exactly as many as the run
sends, each on a call prepared in Redis at its step (bench/workload.py); reference apps
cycle through a few. Latency counts from each request's intended send time.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.accounts import account
from bench.driver import Driver
from bench.plan import CAPACITY_P99_MS, DEADLINE_S, OPEN_RATES, Kind, Plan, Target
from bench.webhooks import write_lines
from bench.workload import Workload

PAUSE_S = 1.0  # between runs, so one run's backlog does not start the next
# The generator's connection cap in the overload run. Twilio opens a connection for a
# webhook that finds no idle one; a cap of 512 (the default) held the overload's excess
# in the generator's own queue, where no server can see or shed it (bench/README.md,
# 2026-12-04 evening). At 2x the capacity about one second's arrivals are in flight;
# this leaves the generator's cap far above that, so only the server can hold them.
OVERLOAD_CONNECTIONS = 8192


class OpenLoopError(RuntimeError):
    """The generator failed or printed no result."""


@dataclass(frozen=True)
class Stats:
    """Latency percentiles of one sample, in ms (nearest rank)."""

    n: int
    p50: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        ms = sorted(s * 1e3 for s in seconds)
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan)

        def rank(p: float) -> float:
            return ms[max(0, math.ceil(p * len(ms)) - 1)]

        return cls(len(ms), rank(0.50), rank(0.99), rank(0.999), ms[-1])

    def cell(self) -> str:
        return f"{self.p50:.1f} / {self.p99:.1f} / {self.p999:.1f} / {self.max:.0f}"


@dataclass(frozen=True)
class OpenRun:
    """One open-loop run of one target at one rate."""

    target: str
    rate: float
    seconds: float
    sent: int
    send_s: float
    cpu_s: float
    lag: Stats  # the generator's own lateness in dispatching, not the server's
    latency: Stats
    steps: dict[str, Stats]
    classes: dict[str, int]
    late: int  # answered after the deadline, or never
    calls: int  # whole calls in the run (its /voice requests)
    peak_connections: int

    @property
    def server_errors(self) -> int:
        return sum(n for c, n in self.classes.items() if c.startswith("http_5"))

    @property
    def failed(self) -> int:
        """No HTTP answer at all: connection errors and timeouts."""
        return self.classes.get("error", 0) + self.classes.get("timeout", 0)

    def count(self, cls: str) -> int:
        return self.classes.get(cls, 0)


def parse(target: str, rate: float, seconds: float, raw: dict[str, object]) -> OpenRun:
    """An :class:`OpenRun` from the generator's JSON."""
    latency = [float(x) for x in raw["latency"]]  # type: ignore[attr-defined]
    classes = [str(c) for c in raw["classes"]]  # type: ignore[attr-defined]
    steps = [str(s) for s in raw["steps"]]  # type: ignore[attr-defined]
    answered = [x for x in latency if x >= 0]
    by_step: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for step, lat, cls in zip(steps, latency, classes, strict=True):
        counts[cls] = counts.get(cls, 0) + 1
        if lat >= 0:
            by_step.setdefault(step, []).append(lat)
    return OpenRun(
        target=target, rate=rate, seconds=seconds, sent=int(raw["sent"]),  # type: ignore[call-overload]
        send_s=float(raw["send_s"]), cpu_s=float(raw["cpu_s"]),  # type: ignore[arg-type]
        lag=Stats.of([float(x) for x in raw["lag"]]),  # type: ignore[attr-defined]
        latency=Stats.of(answered),
        steps={step: Stats.of(values) for step, values in sorted(by_step.items())},
        classes=counts,
        late=sum(1 for x in latency if x < 0 or x > DEADLINE_S),
        calls=steps.count("start"),
        peak_connections=int(raw["peak_connections"]),  # type: ignore[call-overload]
    )  # fmt: skip


@dataclass(frozen=True)
class Capacity:
    """The highest probed rate whose p99 stayed within the limit, and every probe."""

    target: str
    rate: float
    probes: list[OpenRun]
    cut_short: bool  # the probe budget ran out before the search closed in


def passes(run: OpenRun) -> bool:
    """A probe passes when its p99 is within the limit and every request was answered."""
    return run.latency.p99 <= CAPACITY_P99_MS and run.failed == 0 and run.late == 0


# Request lines for a kind the product's workload does not make (``count`` → lines).
LineMaker = Callable[[int], list[str]]


@dataclass
class OpenLoop:
    """Runs the generator against the benchmark's servers."""

    plan: Plan
    workload: Workload
    urls: dict[str, str]
    work: Path
    log: Callable[[str], None]
    # The cycled requests of stateless reference apps (bench/driver.py's, shared).
    static_file: Callable[[Target], Path]
    makers: dict[Kind, LineMaker] = field(default_factory=dict)

    def run(
        self, target: Target, rate: float, seconds: float, *, max_connections: int | None = None
    ) -> OpenRun:
        """Load ``target`` at ``rate`` webhooks/s for ``seconds``, open loop (with the
        generator's default connection cap unless ``max_connections`` is given)."""
        count = round(rate * seconds)
        if target.replayable:
            path, cycle = self.static_file(target), True
        else:
            path, cycle = self.work / f"open-{target.name}.requests", False
            maker = self.makers.get(target.kind)
            lines = maker(count) if maker else self.workload.lines(target.kind, target.store, count)
            write_lines(path, lines[:count])
        argv = [sys.executable, "-m", "bench.openloop", self.urls[target.name], str(path),
                str(rate), str(seconds)] + (["--cycle"] if cycle else [])  # fmt: skip
        if max_connections is not None:
            argv += ["--max-connections", str(max_connections)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        finally:
            if not cycle:
                path.unlink(missing_ok=True)
        if done.returncode != 0:
            raise OpenLoopError(f"open-loop generator failed: {done.stderr.strip()[-300:]}")
        result = parse(target.name, rate, seconds, json.loads(done.stdout))
        self.log(
            f"open loop {target.name:<10} {rate:7,.0f}/s  p50/p99/p99.9/max "
            f"{result.latency.cell()} ms  lag p99 {result.lag.p99:.1f} ms"
        )
        return result

    def series(self, targets: Sequence[Target]) -> list[OpenRun]:
        """Every target at every rate, the targets interleaved at each rate."""
        runs = []
        for rate in OPEN_RATES:
            for target in targets:
                runs.append(self.run(target, rate, self.plan.open_s))
                pause(self.plan)
        return runs

    def capacity(self, target: Target, start: float = 100.0) -> Capacity:
        """Double the rate until a probe fails, then bisect to within 10 %."""
        probes: list[OpenRun] = []
        good, bad = 0.0, math.inf
        rate = start
        while len(probes) < self.plan.max_probes:
            run = self.run(target, rate, self.plan.probe_s)
            probes.append(run)
            pause(self.plan)
            if passes(run):
                good = rate
            else:
                bad = rate
            if bad - good <= 0.1 * max(good, start):
                break
            rate = rate * 2 if math.isinf(bad) else round((good + bad) / 2 / 10) * 10
            if good == 0.0 and not math.isinf(bad):
                rate = bad / 2  # even the first probe failed: halve
        closed = bad - good <= 0.1 * max(good, start)
        return Capacity(target.name, good, probes, cut_short=not closed)


@dataclass
class OpenResults:
    """What the open-loop part of one run measured."""

    targets: dict[str, Target]
    runs: list[OpenRun] = field(default_factory=list)
    capacities: dict[str, Capacity] = field(default_factory=dict)
    overload: OpenRun | None = None

    def at(self, name: str, rate: int) -> OpenRun | None:
        return next((r for r in self.runs if r.target == name and r.rate == rate), None)


def measure_open_loop(plan: Plan, driver: Driver, redis_url: str) -> OpenResults:
    """Latency at fixed rates, capacity of the product and the floor, then overload."""
    floor_menu = floor_menu_maker(redis_url, driver.workload, plan.small_accounts)
    targets = {t.name: t for t in plan.open_targets(floor_menu=floor_menu is not None)}
    gen = OpenLoop(plan, driver.workload, driver.urls, driver.work, driver.log, driver.static_file)
    if floor_menu is not None:
        gen.makers[Kind.FLOOR_MENU] = floor_menu
    res = OpenResults(targets, runs=gen.series(list(targets.values())))
    for name in ("floor", "mix", "pin"):
        driver.log(f"capacity search: {name}")
        res.capacities[name] = gen.capacity(targets[name])
    capacity = res.capacities["mix"].rate
    if capacity > 0:
        driver.log(f"overload: mix at {2 * capacity:,.0f}/s for {plan.overload_s:g} s")
        res.overload = gen.run(
            targets["mix"], 2 * capacity, plan.overload_s, max_connections=OVERLOAD_CONNECTIONS
        )
    return res


def pause(plan: Plan) -> None:
    time.sleep(PAUSE_S if not plan.smoke else 0.1)


def floor_menu_maker(redis_url: str, workload: Workload, accounts: int) -> LineMaker | None:
    """Requests for the menu floor, each on a floor call prepared at the menu, through
    bench/floor_requests.py's public functions; None where that module does not exist."""
    try:
        from bench import floor_requests
    except ImportError:
        return None
    client = redis.Redis.from_url(redis_url)
    cursor = itertools.count()

    def lines(count: int) -> list[str]:
        callers = (account(next(cursor) % accounts).phone for _ in range(count))
        calls = [floor_requests.menu_call(workload.sids.new(), phone) for phone in callers]
        floor_requests.prepare(client, calls)
        return [call.line(workload.signer) for call in calls]

    return lines
