"""``bench/run --fleet``: the product on one Redis and one node, and as a fleet.

Single mode is the production line on one standalone Redis; fleet mode is the same line
on two gunicorn nodes over a Redis Cluster of 3 primaries and 3 replicas (with a
standalone Redis for rq), loaded by one wrk per node with half the connections each, as
a load balancer would spread them. Both serve the whole-call mix on the same SQLite PIN
store, in interleaved rounds on this one machine: the ratio shows what the distributed
layer costs here (six Redis servers, replica acknowledgements, two nodes sharing two
cores), not how a fleet scales across machines. Then round trips and sequential rounds
per webhook, in-process, on a standalone Redis, a Sentinel group and the cluster.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench.accounts import fill
from bench.driver import HEADROOM, progress
from bench.load import Load, Measurement, find_wrk
from bench.plan import GUNICORN_ARGS, Kind, Plan, Store
from bench.probe import Probe, Trips
from bench.report import _table
from bench.servers import AUTH_TOKEN, Gunicorn, product_config, product_env
from bench.webhooks import Signer, write_lines
from bench.workload import Workload
from ivr import config, create_app
from ivr.config import Settings
from ivr.embedded_redis import running_redis
from ivr.metrics import MULTIPROC_ENV
from ivr.store.hashing import PinHasher
from ivr.store.scripts import script
from tests.fleet.cluster import ClusterHarness
from tests.fleet.sentinel import SentinelHarness

PRODUCT_APP = "ivr:create_app()"
SCRIPTS = ("calls_save.lua", "lockout_caller.lua", "lockout_account.lua", "lockout_global.lua",
           "lockout_account_reset.lua", "lockout_take_back.lua")  # fmt: skip


@dataclass
class Mode:
    """One way of serving the product: its nodes and the calls prepared for it."""

    name: str
    label: str
    urls: list[str]
    workload: Workload
    rate: float = 1000.0


def run_fleet(plan: Plan, args: argparse.Namespace) -> int:
    """Measure both modes and the round trips per topology; print the report."""
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    load = Load(find_wrk(), plan.wrk_threads, plan.connections)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-fleet-")))
        single = stack.enter_context(running_redis())
        progress("starting a Redis Cluster (3 primaries, 3 replicas) and rq's Redis")
        cluster = stack.enter_context(ClusterHarness())
        queue = stack.enter_context(running_redis())
        db = f"sqlite:///{work / 'pins.sqlite3'}"
        single_cfg = product_config(work / "single.toml", single.url, db)
        fleet_cfg = product_config(work / "fleet.toml", cluster.url, db, queue.url)
        progress(f"filling the PIN store with {plan.small_accounts:,} accounts")
        fill(db, plan.small_accounts, PinHasher.from_settings(_settings(single_cfg).pin_store))
        modes = [
            Mode("single", "one node, one Redis", [], _workload(plan, single_cfg)),
            Mode("fleet", "two nodes, Redis Cluster 3+3", [], _workload(plan, fleet_cfg)),
        ]
        for mode in modes:
            stack.callback(mode.workload.close)
        modes[0].urls = [stack.enter_context(_served(work, results_dir, single_cfg, "single"))]
        modes[1].urls = [stack.enter_context(_served(work, results_dir, fleet_cfg, f"fleet-{i}"))
                         for i in (1, 2)]  # fmt: skip
        measured = _rounds(plan, load, modes, work)
        trips = _topology_trips(plan, work, db, {"standalone": single_cfg, "cluster": fleet_cfg},
                                cluster)  # fmt: skip
    report = render(plan, modes, measured, trips)
    print(report, end="")
    (results_dir / "fleet.md").write_text(report, encoding="utf-8")
    unexpected = sum(_unexpected(m) for runs in measured.values() for m in runs)
    return 1 if unexpected else 0


def _settings(path: Path) -> Settings:
    return config.load(path, env=product_env(path))


def _workload(plan: Plan, path: Path) -> Workload:
    accounts = {Store.SMALL: plan.small_accounts, Store.LARGE: plan.small_accounts}
    return Workload.for_settings(_settings(path), AUTH_TOKEN, accounts)


@contextmanager
def _served(work: Path, logs: Path, path: Path, name: str) -> Iterator[str]:
    """One gunicorn node of the product (the production line) on ``path``'s config."""
    metrics = work / f"metrics-{name}"
    metrics.mkdir()
    env = {**product_env(path), MULTIPROC_ENV: str(metrics)}
    server = Gunicorn(name, PRODUCT_APP, "/readyz", logs / f"gunicorn-{name}.log", env=env)
    progress(f"starting {name}: gunicorn {' '.join(GUNICORN_ARGS)}")
    server.start()
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


def _rounds(plan: Plan, load: Load, modes: list[Mode], work: Path) -> dict[str, list[Measurement]]:
    for mode in modes:
        warm = _measure(plan, load, mode, work, plan.warmup_s)
        progress(f"warm-up  {mode.name:<8} {warm.rps:8,.0f} req/s")
    results: dict[str, list[Measurement]] = {mode.name: [] for mode in modes}
    for number in range(1, plan.rounds + 1):
        for mode in modes:
            m = _measure(plan, load, mode, work, plan.measure_s)
            results[mode.name].append(m)
            progress(f"round {number} {mode.name:<8} {m.rps:8,.0f} req/s  p99 {m.p99_ms:6.1f} ms")
    return results


def _measure(plan: Plan, load: Load, mode: Mode, work: Path, seconds: int) -> Measurement:
    """The whole-call mix on every node of ``mode`` at once, each its share of requests."""
    count = math.ceil(mode.rate * (seconds * HEADROOM + 1)) + 100
    lines = mode.workload.lines(Kind.MIX, Store.SMALL, count)
    jobs = []
    for index, url in enumerate(mode.urls):
        path = work / f"{mode.name}-{index}.requests"
        write_lines(path, lines[index :: len(mode.urls)])  # any webhook may go to any node
        jobs.append((url, path))
    m = load.run_together(jobs, seconds, cycle=False)
    if m.exhausted:
        raise RuntimeError(f"{mode.name}: requests ran out; rerun")
    mode.rate = max(m.rps, 200.0)
    return m


def _unexpected(m: Measurement) -> int:
    allowed = {"gather", "verified", "no_content"}
    return sum(n for c, n in m.classes.items() if c not in allowed) + m.errors


def _topology_trips(
    plan: Plan, work: Path, db: str, configs: dict[str, Path], cluster: ClusterHarness
) -> dict[str, list[Trips]]:
    """Round trips and rounds per webhook on each topology (in-process, warmed up)."""
    found: dict[str, list[Trips]] = {}
    for primary in cluster.primaries():  # steady state: every script cached on every node
        for lua in SCRIPTS:
            primary.call("SCRIPT", "LOAD", script(lua).source)
    with SentinelHarness() as sentinel:
        configs = {**configs, "sentinel": product_config(work / "sentinel.toml", sentinel.url, db)}
        for name in ("standalone", "sentinel", "cluster"):
            progress(f"counting round trips per webhook on {name}")
            settings = _settings(configs[name])
            app = create_app(settings)
            workload = _workload(plan, configs[name])
            try:
                probe = Probe(app.test_client(), Signer(AUTH_TOKEN), workload)
                found[name] = probe.round_trips(plan.trip_samples)
            finally:
                workload.close()
                app.extensions["ivr"].close()
    return found


def render(
    plan: Plan, modes: list[Mode], measured: dict[str, list[Measurement]],
    trips: dict[str, list[Trips]],
) -> str:  # fmt: skip
    """The fleet report as Markdown."""
    rps = {name: median(m.rps for m in runs) for name, runs in measured.items()}
    out = ["# Service-PIN IVR: one Redis vs. a fleet", ""]
    out += [f"- whole-call mix @ {plan.small_label}; {plan.rounds} round(s) of "
            f"{plan.measure_s} s per mode, {plan.connections} connections in all"]  # fmt: skip
    out += ["", "## Throughput (median of the rounds)", ""]
    out += _table(
        ("mode", "req/s", "p50 ms", "p99 ms", "req/s per round", "unexpected"),
        [
            (f"{m.name}: {m.label}", f"{rps[m.name]:,.0f}",
             f"{median(r.p50_ms for r in measured[m.name]):.1f}",
             f"{median(r.p99_ms for r in measured[m.name]):.1f}",
             " / ".join(f"{r.rps:,.0f}" for r in measured[m.name]),
             str(sum(_unexpected(r) for r in measured[m.name])))
            for m in modes
        ],
    )  # fmt: skip
    out += ["", f"fleet / single: {rps['fleet'] / rps['single']:.2f}x", ""]
    out += ["## Redis round trips and sequential rounds per webhook (in-process)", ""]
    names = list(trips)
    kinds = [t.webhook for t in trips[names[0]]]
    header = ("webhook", *(f"{n} trips / rounds" for n in names))
    rows = []
    for index, kind in enumerate(kinds):
        cells = [f"{trips[n][index].round_trips:g} / {trips[n][index].rounds:g}" for n in names]
        rows.append((kind, *cells))
    out += _table(header, rows)
    return "\n".join(out) + "\n"
