"""``--profile``: py-spy on the product's gunicorn workers while one step is under load.

One worker is sampled into a flame graph (SVG), the other into collapsed stacks, from
which the top functions by own and total time are written as text. Both workers do
the same work, so together they are one profile of the step, in two readable forms.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

RATE_HZ = 200
TOP = 40
# Where a sample's time goes, by layer: the innermost frame whose file matches a rule
# names it (a socket read inside redis-py is redis-py's; json inside the call store is
# JSON's). First matching rule wins for a frame; frames matching none are skipped.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("redis-py: commands, sockets, pool", ("/redis/",)),
    ("SQL: SQLAlchemy, sqlite3, psycopg", ("/sqlalchemy/", "sqlite3", "/psycopg")),
    ("JSON", ("/json/",)),
    (
        "signature: HMAC-SHA1, URL",
        ("/ivr/web/signature.py", "hmac.py", "/twilio/request_validator"),
    ),
    ("form parsing", ("/ivr/web/form.py", "urllib/parse.py", "/werkzeug/formparser.py")),
    ("metrics: prometheus_client", ("/prometheus_client/",)),
    ("logging", ("/logging/",)),
    ("TwiML rendering", ("/ivr/twiml.py", "/twilio/twiml", "/xml/")),
    ("flow engine", ("/ivr/flow/",)),
    ("product: stores' own Python", ("/ivr/store/",)),
    ("product: calls, verification, web", ("/ivr/",)),
    ("Flask, werkzeug", ("/flask/", "/werkzeug/")),
    ("gunicorn: HTTP, sockets, worker", ("/gunicorn/",)),
    ("thread hand-offs: futures, locks", ("concurrent/futures", "threading.py", "queue.py")),
)


def py_spy() -> str:
    """The py-spy binary (``pip install -e '.[bench]'`` installs it into the venv)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    return found


def start(workers: list[int], seconds: int, out: Path, name: str) -> list[subprocess.Popen[bytes]]:
    """Start sampling ``workers`` for ``seconds``: the first as SVG, the second as stacks."""
    spy = py_spy()
    formats = [("flamegraph", out / f"profile-{name}.svg"), ("raw", out / f"profile-{name}.txt")]
    procs = []
    for pid, (fmt, path) in zip(workers, formats, strict=False):
        command = [
            spy, "record", "--pid", str(pid), "--duration", str(seconds),
            "--rate", str(RATE_HZ), "--gil", "--format", fmt, "--output", str(path),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        )
    time.sleep(0.5)  # attached before the load starts
    return procs


def finish(procs: list[subprocess.Popen[bytes]], out: Path, name: str) -> list[Path]:
    """Wait for py-spy, write the top-functions table; returns the files written."""
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            message = err.decode("utf-8", "replace").strip().splitlines() or ["failed"]
            raise RuntimeError(f"py-spy failed: {message[-1]}")
    written = [p for p in (out / f"profile-{name}.svg", out / f"profile-{name}.txt") if p.exists()]
    stacks = out / f"profile-{name}.txt"
    if stacks.exists():
        top = out / f"profile-{name}-top.txt"
        top.write_text(top_functions(stacks.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(top)
    return written


def top_functions(collapsed: str) -> str:
    """Own and total share of samples per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if samples == 0:
        return "no samples\n"
    lines = [f"{samples} samples at {RATE_HZ} Hz", "", "own time:"]
    lines += [f"{n / samples:6.1%}  {frame}" for frame, n in own.most_common(TOP)]
    lines += ["", "by layer (each sample to its innermost frame a layer names):"]
    lines += [f"{share:6.1%}  {layer}" for layer, share in by_layer(collapsed)]
    lines += ["", "total time (including callees):"]
    lines += [f"{n / samples:6.1%}  {frame}" for frame, n in total.most_common(TOP)]
    return "\n".join(lines) + "\n"


def by_layer(collapsed: str) -> list[tuple[str, float]]:
    """Each layer's share of the samples (:data:`LAYERS`), largest first; "other" for
    samples no layer names."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[_layer(stack.split(";"))] += int(count)
    samples = sum(counts.values())
    return [(layer, n / samples) for layer, n in counts.most_common()] if samples else []


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        # "function (path:line)": the path may be short ("redis/client.py") or absolute.
        frame = frame.replace(" (", " (/", 1)
        for layer, patterns in LAYERS:
            if any(pattern in frame for pattern in patterns):
                return layer
    return "other"
