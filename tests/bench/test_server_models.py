"""``bench/run --servers``: the models' command lines are the documented ones, the
production model follows bench/plan.py, and the smoke run goes end to end.

No timing is asserted: the smoke run's numbers mean nothing.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bench import plan
from bench.latency import OpenRun, parse
from bench.server_models import MODELS, PRODUCT_APP, Model
from bench.server_report import OVERLOAD, _overload_verdict
from tests.bench.bench_cli import bench_run

REPO = Path(__file__).resolve().parents[2]
BENCH_README = REPO / "bench" / "README.md"


def documented() -> dict[str, str]:
    """The command line per model in bench/README.md's "Server models" section."""
    text = BENCH_README.read_text(encoding="utf-8")
    section = text.split("## Server models (`--servers`)", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    return dict(line.split(": ", 1) for line in block.splitlines())


def test_each_model_runs_the_command_line_the_bench_readme_documents() -> None:
    """Every model's command line, with the production line read from bench/plan.py, is
    the one bench/README.md documents, and the README documents no other model."""
    lines = documented()
    assert set(lines) == {m.name for m in MODELS}
    production = shlex.join(plan.PRODUCTION_ARGS)
    for model in MODELS:
        assert model.shown() == lines[model.name].replace("PRODUCTION_ARGS", production)


def test_the_production_model_follows_plan_production_args(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The production model reads PRODUCTION_ARGS when it builds its command, so a change
    of the production line changes what the comparison measures, and adds nothing to it."""
    changed = ("--worker-class", "sync", "--workers", "3")
    monkeypatch.setattr(plan, "PRODUCTION_ARGS", changed)
    model: Model = next(m for m in MODELS if m.name == "production")
    argv = model.command(PRODUCT_APP, "8000", "log")
    assert argv == ["gunicorn", "--bind", "127.0.0.1:8000", *changed,
                    "--error-logfile", "log", "--log-level", "warning", PRODUCT_APP]  # fmt: skip


def test_the_product_imports_neither_gevent_nor_granian() -> None:
    """gevent and granian are benchmark tools only: no module of the product imports them."""
    pattern = re.compile(r"^\s*(import|from)\s+(gevent|granian)\b", re.MULTILINE)
    for source in [*REPO.glob("ivr/**/*.py"), *REPO.glob("workers/**/*.py")]:
        assert not pattern.search(source.read_text(encoding="utf-8")), source


def test_servers_smoke_run_measures_every_model(tmp_path: Path) -> None:
    """bench/run --servers --smoke serves the product, floor and peer under every model,
    gets only the expected answers, and prints the medians, rounds and the verdicts."""
    done = bench_run(tmp_path, "--servers", "--smoke")
    out = done.stdout
    for row in ("- commit: ", "- machine: ", "- load average at the start: ",
                "- load average at the end: ", "## Medians of the rounds", "## Each round",
                "| PIN step @ 300/s |", "| whole-call mix @ 600/s |",
                "| whole-call mix capacity /s |", "| PIN floor capacity /s |",
                "| mix / floor capacity |", "### gevent vs. production",
                "## Overload: the mix at twice each model's median capacity",
                "| overload: every answer within the deadline |",
                "### granian vs. production"):  # fmt: skip
        assert row in out, f"missing {row!r} in:\n{out}"
    for model in MODELS:
        assert f"| {model.name} | " in out
        assert f"`{model.shown()}`" in out
        assert re.search(rf"^\| 2 \| {model.name} \|", out, re.MULTILINE), out
    errors = next(line for line in out.splitlines() if line.startswith("| wrong answers"))
    cells = [c.strip() for c in errors.strip("|").split("|")][1:]
    assert len(cells) == len(MODELS) and all(c.startswith("0 / 0 / ") for c in cells), errors
    assert (tmp_path / "servers.md").read_text(encoding="utf-8") == out


def overload_run(latencies: list[float], classes: list[str]) -> OpenRun:
    """An overload run of the mix whose answers came after ``latencies`` seconds."""
    raw = {"sent": len(latencies), "send_s": 1.0, "cpu_s": 0.1, "lag": [0.0],
           "latency": latencies, "classes": classes, "steps": ["start"] * len(latencies),
           "peak_connections": 1}  # fmt: skip
    return parse("mix", 100.0, 1.0, raw)


@pytest.mark.parametrize(
    ("base", "other", "verdict"),
    [
        ([0.5, 1.1], [0.5, 3.0], "worse"),  # the other answered one past the 2 s deadline
        ([0.5, 3.0], [0.5, 1.1], "better"),
        ([0.5, 1.1], [0.5, -1.0], "worse"),  # one never answered
        ([0.5, 1.1], [0.5, 1.9], "-"),  # both met: no difference to judge
        ([0.5, 3.0], [9.0, 3.0], "-"),  # both missed
    ],
)
def test_overload_is_judged_by_its_target(
    base: list[float], other: list[float], verdict: str
) -> None:
    """Under overload a model is worse than production when it misses the target (every
    webhook answered within the deadline) that production meets, better the other way."""
    classes = ["gather", "unavailable"]
    runs: dict[str, OpenRun | None] = {
        "production": overload_run(base, classes),
        "granian": overload_run(other, classes),
    }
    assert _overload_verdict(runs, "granian")[0] == OVERLOAD
    assert _overload_verdict(runs, "granian")[3] == verdict
