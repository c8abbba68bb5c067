"""The benchmark serves every target with the README's documented production settings."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.plan import GUNICORN_ARGS, PRODUCTION_ARGS

README = Path(__file__).resolve().parents[2] / "README.md"


def production_line() -> list[str]:
    """The gunicorn command of the README's production section, split like a shell."""
    lines = [line for line in README.read_text(encoding="utf-8").splitlines()
             if line.startswith("gunicorn ") and '"ivr:create_app()"' in line]  # fmt: skip
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_bench_uses_the_documented_production_settings() -> None:
    """Every option of the README's production line is the benchmark's, value for value."""
    words = production_line()
    options = {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--")}
    options.pop("--bind")  # the benchmark binds a loopback port per server
    bench = dict(zip(PRODUCTION_ARGS[::2], PRODUCTION_ARGS[1::2], strict=True))
    assert bench == options


def test_bench_adds_nothing_to_the_production_line() -> None:
    """Every server runs the production line and nothing else (no --worker-connections)."""
    assert GUNICORN_ARGS == PRODUCTION_ARGS
