"""``bench/run --servers``: the product under each server and worker model, open loop.

Every model serves the product (10^3 accounts, SQLite), the PIN floor and the peer on
ports of its own; all of them stay up for the whole run. In each round every model in
turn gets the peer, the PIN step and the whole-call mix at 300 and 600 webhooks/s, then
the capacity search of the whole-call mix and of the PIN floor (bench/latency.py's
generator and search, unchanged), so machine noise hits every model alike. The report
(bench/server_report.py) gives each round, the medians and the spread between rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median_high

from bench import plan as plans
from bench.accounts import fill
from bench.driver import Driver, progress
from bench.latency import OVERLOAD_CONNECTIONS, Capacity, OpenLoop, OpenRun, passes, pause
from bench.latency_report import JUDGED_RATES
from bench.load import Load
from bench.plan import EXPECTED, Plan, Store, Target
from bench.server_report import render
from bench.servers import AUTH_TOKEN, REPO, Gunicorn, floor_env, product_config, product_env
from bench.workload import Workload
from ivr import config
from ivr.embedded_redis import running_redis
from ivr.metrics import MULTIPROC_ENV
from ivr.store.hashing import PinHasher

PRODUCT_APP = "ivr:create_app()"
# name -> (app, the path that answers 200 once it is up)
APPS = {
    "product": (PRODUCT_APP, "/readyz"),
    "floor": ("bench.floor_app:create_app()", "/"),
    "peer": ("bench.peer_app:create_app()", "/ivr/welcome"),
}
LATENCY_TARGETS = ("peer", "pin", "mix")  # each at every JUDGED_RATES rate, every round
CAPACITY_TARGETS = ("mix", "floor")
WARMUP_RATE = 300
MIN_ROUNDS = 2  # a spread needs two rounds, even in the smoke run
# gthread's threads per worker where the production line has none (it may change).
DEFAULT_THREADS = 8
# gevent: as many connections per worker as the open-loop generator may open in all
# (bench/openloop.py --max-connections), so that the cap never holds a new connection in
# the backlog while idle keep-alive ones wait out gunicorn's 2 s keepalive: the stall that
# --worker-connections 16 gave gthread (bench/README.md), and 50 gave gevent in a trial.
GEVENT_CONNECTIONS = 512

# A model's command: (app as gunicorn names it, port, log file) -> argv, its program
# first, by name (the .venv's bin is prepended when it starts).
Command = Callable[[str, str, str], list[str]]


@dataclass(frozen=True)
class Model:
    """One way of serving a WSGI app: gunicorn with a worker class, or granian."""

    name: str
    label: str
    command: Command

    def shown(self, app: str = PRODUCT_APP) -> str:
        """The command line as bench/README.md documents it (PORT and LOG stand in)."""
        return shlex.join(self.command(app, "PORT", "LOG"))


def production_threads() -> int:
    """gthread's ``--threads`` in the production line (read now: it may change)."""
    args = list(plans.PRODUCTION_ARGS)
    if "--threads" in args:
        return int(args[args.index("--threads") + 1])
    return DEFAULT_THREADS


def _production(app: str, port: str, log: str) -> list[str]:
    return ["gunicorn", "--bind", f"127.0.0.1:{port}", *plans.PRODUCTION_ARGS,
            "--error-logfile", log, "--log-level", "warning", app]  # fmt: skip


def _gevent(app: str, port: str, log: str) -> list[str]:
    return ["gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gevent",
            "--workers", str(plans.WORKERS), "--worker-connections", str(GEVENT_CONNECTIONS),
            "--error-logfile", log, "--log-level", "warning", app]  # fmt: skip


def _granian(app: str, port: str, log: str) -> list[str]:
    """granian names a factory without its call and with ``--factory``; it logs to
    stderr, which the server's log file receives."""
    if not app.endswith("()"):
        raise ValueError(f"not a factory: {app}")
    return ["granian", "--interface", "wsgi", "--workers", str(plans.WORKERS),
            "--blocking-threads", str(production_threads()), "--host", "127.0.0.1",
            "--port", port, "--log-level", "warning",
            "--factory", app.removesuffix("()")]  # fmt: skip


MODELS = (
    Model("production", "the production line (bench/plan.py PRODUCTION_ARGS)", _production),
    Model("gevent", "gunicorn gevent worker, monkey-patched (redis-py cooperative)", _gevent),
    Model("granian", "granian WSGI, blocking threads = the production --threads", _granian),
)


@dataclass(kw_only=True)
class Served(Gunicorn):
    """One server of ``model``; its program's output goes to its log file."""

    model: Model

    def command(self) -> list[str]:
        argv = self.model.command(self.app, str(self.port), str(self.log))
        return [str(Path(sys.executable).with_name(argv[0])), *argv[1:]]

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.command(), cwd=REPO, env=self.env, stdout=out, stderr=out
            )


@dataclass
class Round:
    """What one model measured in one round."""

    model: str
    number: int
    runs: dict[tuple[str, int], OpenRun] = field(default_factory=dict)
    capacities: dict[str, Capacity] = field(default_factory=dict)
    # Answers that were not the TwiML their target must give, at a fixed rate or in a
    # probe within capacity (errors), and in probes past capacity (shown, no error).
    wrong: int = 0
    wrong_past: int = 0
    unanswered: int = 0  # at a fixed rate (a probe past capacity may leave some)


@dataclass
class Setup:
    """What the rounds need: the plan, the requests, each model's URLs per target."""

    plan: Plan
    workload: Workload
    driver: Driver  # only for its cycled request files: wrk is not run in this mode
    urls: dict[str, dict[str, str]]
    targets: dict[str, Target]


def run_servers(plan: Plan, args: argparse.Namespace) -> int:
    """Measure every model in interleaved rounds; print and write the report."""
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    meta = _meta(plan)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-servers-")))
        setup = stack.enter_context(_setup(plan, work, results_dir))
        rounds = _rounds(setup)
        overloads = {m.name: _overload(setup, m, rounds) for m in MODELS}
    meta.append(("load average at the end", _loadavg()))
    report = render(plan, MODELS, meta, rounds, overloads)
    sys.stdout.write(report)
    (results_dir / "servers.md").write_text(report, encoding="utf-8")
    wrong = sum(r.wrong + r.unanswered for r in rounds)
    if wrong:
        print(f"error: {wrong} answers were not the expected TwiML, or missing", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _setup(plan: Plan, work: Path, logs: Path) -> Iterator[Setup]:
    """A Redis, the 10^3 store, and every model's three servers, up and ready."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(running_redis()).url
        db = work / "pins.sqlite3"
        cfg = product_config(work / "ivr.toml", redis_url, f"sqlite:///{db}")
        settings = config.load(cfg, env=product_env(cfg))
        progress(f"filling the PIN store with {plan.small_accounts:,} accounts")
        fill(f"sqlite:///{db}", plan.small_accounts, PinHasher.from_settings(settings.pin_store))
        accounts = {Store.SMALL: plan.small_accounts, Store.LARGE: plan.small_accounts}
        workload = Workload.for_settings(settings, AUTH_TOKEN, accounts)
        stack.callback(workload.close)
        envs = {"floor": floor_env(cfg, redis_url, db), "peer": dict(os.environ)}
        servers: list[Served] = []

        @stack.callback
        def stop() -> None:
            for server in servers:
                server.stop()

        for model in MODELS:
            metrics = work / f"metrics-{model.name}"
            metrics.mkdir()
            envs["product"] = {**product_env(cfg), MULTIPROC_ENV: str(metrics)}
            for name, (app, ready) in APPS.items():
                log = logs / f"servers-{model.name}-{name}.log"
                log.unlink(missing_ok=True)
                servers.append(Served(f"{model.name}/{name}", app, ready, log,
                                      env=envs[name], model=model))  # fmt: skip
            progress(f"starting {model.name}: {model.shown()}")
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        urls = {
            m.name: {s.name.split("/")[1]: s.url for s in servers if s.model is m} for m in MODELS
        }
        for by_app in urls.values():
            by_app["pin"] = by_app["mix"] = by_app["product"]
        driver = Driver(plan, Load("wrk", 1, plan.connections), workload, {}, work)
        targets = {t.name: t for t in plan.targets() if t.store is not Store.LARGE}
        yield Setup(plan, workload, driver, urls, targets)


def _rounds(setup: Setup) -> list[Round]:
    """A warm-up per model (not in the smoke run), then the rounds, models interleaved."""
    plan = setup.plan
    if not plan.smoke:
        for model in MODELS:
            gen = _generator(setup, model)
            for name in (*LATENCY_TARGETS, "floor"):
                gen.run(setup.targets[name], WARMUP_RATE, plan.warmup_s)
                pause(plan)
    rounds = []
    for number in range(1, max(plan.rounds, MIN_ROUNDS) + 1):
        for model in MODELS:
            rounds.append(_measure(setup, model, number))
    return rounds


def _generator(setup: Setup, model: Model) -> OpenLoop:
    def log(message: str) -> None:
        progress(f"{model.name:<10} {message}")

    return OpenLoop(setup.plan, setup.workload, setup.urls[model.name], setup.driver.work,
                    log, setup.driver.static_file)  # fmt: skip


def _measure(setup: Setup, model: Model, number: int) -> Round:
    """One model's round: latency at each judged rate, then the capacity searches."""
    gen = _generator(setup, model)
    res = Round(model.name, number)
    for rate in JUDGED_RATES:
        for name in LATENCY_TARGETS:
            run = gen.run(setup.targets[name], rate, setup.plan.open_s)
            pause(setup.plan)  # one run's backlog must not start the next
            res.runs[name, rate] = run
            res.unanswered += run.failed
            res.wrong += _wrong(run, setup.targets[name])
    for name in CAPACITY_TARGETS:
        res.capacities[name] = gen.capacity(setup.targets[name])
        for probe in res.capacities[name].probes:
            wrong = _wrong(probe, setup.targets[name])
            if passes(probe):
                res.wrong += wrong
            else:
                res.wrong_past += wrong
    return res


def _overload(setup: Setup, model: Model, rounds: list[Round]) -> OpenRun | None:
    """The whole-call mix at twice the model's median capacity, connections uncapped as
    in bench/latency.py's overload run (None when it has no capacity)."""
    found = [r.capacities["mix"].rate for r in rounds if r.model == model.name]
    if not found or median_high(found) <= 0:
        return None
    rate = 2 * median_high(found)
    progress(f"{model.name:<10} overload: mix at {rate:,.0f}/s for {setup.plan.overload_s:g} s")
    run = _generator(setup, model).run(setup.targets["mix"], rate, setup.plan.overload_s,
                                       max_connections=OVERLOAD_CONNECTIONS)  # fmt: skip
    pause(setup.plan)
    return run


def _wrong(run: OpenRun, target: Target) -> int:
    """HTTP answers that are not the TwiML ``target`` must give (no answer is not one)."""
    allowed = EXPECTED[target.kind] | {"error", "timeout"}
    return sum(n for cls, n in run.classes.items() if cls not in allowed)


def _meta(plan: Plan) -> list[tuple[str, str]]:
    head = subprocess.run(  # noqa: S603 - fixed argv, read-only
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    rounds = max(plan.rounds, MIN_ROUNDS)
    return [
        ("mode", "smoke (numbers mean nothing)" if plan.smoke else "full"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", head or "unknown"),
        ("machine", f"{os.cpu_count()} CPUs, Python {platform.python_version()}"),
        ("load average at the start", _loadavg()),
        (
            "rounds",
            f"{rounds}, the models interleaved in each; warm-up "
            f"{'none' if plan.smoke else f'{plan.warmup_s} s per target'}",
        ),
        (
            "open loop",
            f"bench/openloop.py, {plan.open_s:g} s per point; capacity probes of "
            f"{plan.probe_s:g} s, at most {plan.max_probes} per search",
        ),
        ("PIN store", f"SQLite, {plan.small_accounts:,} accounts"),
    ]


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
