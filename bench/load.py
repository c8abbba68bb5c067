"""The load generator: wrk (Debian package) in its own process, driven by replay.lua."""

from __future__ import annotations

import shutil
import subprocess
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
        command = [
            self.wrk, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s",
            "--timeout", TIMEOUT, "-s", str(LUA), url,
            "--", str(requests), "cycle" if cycle else "once", str(self.threads),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise LoadError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return parse(done.stdout)


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
