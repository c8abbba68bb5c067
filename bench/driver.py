"""Runs the targets: a warm-up each, then interleaved rounds, with fresh requests per run.

Requests for a product target are generated right before its run, sized from the rate
the target last showed (so every run has more valid requests than it can send); if a
run still runs out, it is discarded and repeated with twice as many.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import Load, Measurement
from bench.plan import Plan, Target
from bench.webhooks import write_lines
from bench.workload import Workload

STARTED = time.monotonic()
# Requests prepared: twice what the last rate predicts, plus a second's worth, because
# rates swing between runs on a shared 2-core machine; running out costs a repeat.
HEADROOM = 2.0
STATIC_REQUESTS = 2_000  # baseline and peer cycle through these
MIN_RPS = 200
RETRIES = 3


def progress(message: str) -> None:
    """Progress goes to stderr; stdout is the report."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Driver:
    """Loads each target's server with its own requests."""

    plan: Plan
    load: Load
    workload: Workload
    urls: dict[str, str]
    work: Path
    log: Callable[[str], None] = progress
    rates: dict[str, float] = field(default_factory=dict)
    _static: dict[str, Path] = field(default_factory=dict)

    def rounds(self) -> dict[str, list[Measurement]]:
        """One warm-up per target, then ``plan.rounds`` rounds over all targets in turn."""
        targets = self.plan.targets()
        # The smoke run checks the harness, not the numbers: its seconds go elsewhere.
        for target in targets if not self.plan.smoke else ():
            warm = self.measure(target, self.plan.warmup_s)
            self.log(f"warm-up  {target.name:<10} {warm.rps:8,.0f} req/s")
        results: dict[str, list[Measurement]] = {t.name: [] for t in targets}
        for number in range(1, self.plan.rounds + 1):
            for target in targets:
                m = self.measure(target, self.plan.measure_s)
                results[target.name].append(m)
                self.log(
                    f"round {number} {target.name:<10} {m.rps:8,.0f} req/s  "
                    f"p50 {m.p50_ms:6.1f} ms  p99 {m.p99_ms:6.1f} ms"
                )
        return results

    def measure(self, target: Target, seconds: int) -> Measurement:
        """Run ``target`` for ``seconds``; repeated with more requests if they ran out."""
        if target.replayable:
            return self.load.run(
                self.urls[target.name], self.static_file(target), seconds, cycle=True
            )
        rate = max(self.rates.get(target.name, self.plan.guess_rps), MIN_RPS)
        for _ in range(RETRIES):
            count = math.ceil(rate * (seconds * HEADROOM + 1)) + 100
            path = self.work / f"{target.name}.requests"
            write_lines(path, self.workload.lines(target.kind, target.store, count))
            try:
                m = self.load.run(self.urls[target.name], path, seconds, cycle=False)
            finally:
                path.unlink(missing_ok=True)
            if not m.exhausted:
                self.rates[target.name] = m.rps
                return m
            self.log(f"{target.name}: {count:,} requests ran out; repeating with twice as many")
            rate = 2 * count / seconds
        raise RuntimeError(f"{target.name}: requests ran out {RETRIES} times in a row")

    def static_file(self, target: Target) -> Path:
        """The few requests a stateless reference app is sent, cycled (written once)."""
        if target.name not in self._static:
            path = self.work / f"{target.name}.requests"
            write_lines(path, self.workload.lines(target.kind, target.store, STATIC_REQUESTS))
            self._static[target.name] = path
        return self._static[target.name]
