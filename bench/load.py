"""The load generator: wrk (Debian package) in its own process, driven by replay.lua."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk" / "replay.lua"
TIMEOUT = "5s"  # far above any sane answer; a slower one counts as a timeout error


class LoadError(RuntimeError):
    """wrk is missing or did not report a result."""


def find_wrk() -> str:
    """Path of wrk; installs the Debian package when it is missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise LoadError("wrk is not installed and apt-get is not available: install wrk")
    for step in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise LoadError(f"could not install wrk ({' '.join(step[1:])}): {last}")
    found = shutil.which("wrk")
    if found is None:
        raise LoadError("wrk was installed but is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    """wrk's version line (it prints it with the usage text)."""
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return (done.stdout or done.stderr).splitlines()[0].strip()


@dataclass(frozen=True)
class Measurement:
    """What one wrk run reported."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    exhausted: bool
    classes: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


@dataclass(frozen=True)
class Load:
    """How wrk loads a server: threads, connections; requests come from a file."""

    wrk: str
    threads: int
    connections: int

    def describe(self) -> str:
        return f"wrk -t{self.threads} -c{self.connections} --timeout {TIMEOUT} -s {LUA.name}"

    def run(self, url: str, requests: Path, seconds: int, *, cycle: bool) -> Measurement:
        """Load ``url`` for ``seconds`` with the lines of ``requests``."""
        return self.run_together([(url, requests)], seconds, cycle=cycle)

    def run_together(
        self, jobs: Sequence[tuple[str, Path]], seconds: int, *, cycle: bool
    ) -> Measurement:
        """Load several servers at once, one wrk each with an equal share of the
        connections (as a load balancer would spread them); their results combined."""
        connections = max(self.connections // len(jobs), self.threads)
        procs = [
            subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    self.wrk,
                    f"-t{self.threads}",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "--timeout",
                    TIMEOUT,
                    "-s",
                    str(LUA),
                    url,
                    "--",
                    str(requests),
                    "cycle" if cycle else "once",
                    str(self.threads),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for url, requests in jobs
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise LoadError(f"wrk failed ({proc.returncode}): {err.strip()[-300:]}")
            results.append(parse(out))
        return combined(results)


def combined(parts: Sequence[Measurement]) -> Measurement:
    """One measurement of loads that ran at the same time: requests and errors add up;
    latency percentiles cannot be merged, so the worst part's are kept."""
    if len(parts) == 1:
        return parts[0]
    classes: dict[str, int] = {}
    for part in parts:
        for name, n in part.classes.items():
            classes[name] = classes.get(name, 0) + n
    return Measurement(
        requests=sum(p.requests for p in parts),
        duration_s=max(p.duration_s for p in parts),
        p50_ms=max(p.p50_ms for p in parts),
        p99_ms=max(p.p99_ms for p in parts),
        errors=sum(p.errors for p in parts),
        exhausted=any(p.exhausted for p in parts),
        classes=classes,
    )


def parse(output: str) -> Measurement:
    """Read the ``bench.<key>=<value>`` lines that replay.lua's done() prints."""
    values: dict[str, float] = {}
    classes: dict[str, int] = {}
    for line in output.splitlines():
        if not line.startswith("bench.") or "=" not in line:
            continue
        key, _, raw = line[len("bench.") :].partition("=")
        if key.startswith("class."):
            classes[key[len("class.") :]] = int(float(raw))
        else:
            values[key] = float(raw)
    if "requests" not in values:
        raise LoadError("wrk printed no result (replay.lua done() did not run)")
    errors = sum(int(values.get(f"err_{kind}", 0)) for kind in ("connect", "read", "write"))
    errors += int(values.get("err_timeout", 0))
    return Measurement(
        requests=int(values["requests"]),
        duration_s=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1e3,
        p99_ms=values["p99_us"] / 1e3,
        errors=errors,
        exhausted=values.get("exhausted", 0) > 0,
        classes=classes,
    )
