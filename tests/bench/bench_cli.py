"""Running ``bench/run`` as an operator does, for the smoke tests of its modes."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bench_run(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``bash bench/run <args> --results-dir <results>``; asserts it exited 0 (stderr
    shown otherwise) and returns the finished process."""
    done = subprocess.run(  # noqa: S603 - fixed argv
        ["bash", str(REPO / "bench" / "run"), *args, "--results-dir", str(results)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done
