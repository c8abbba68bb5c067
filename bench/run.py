"""``bench/run``: the whole benchmark in one command (``--smoke``: a quick check of it).

Starts a private Redis, fills two PIN stores, serves baseline, peer and the product
(once per store) under the same gunicorn settings, loads each with wrk in interleaved
rounds, measures the product's Redis use in-process, times ``ivr accounts import`` on
SQLite and PostgreSQL (``bench/imports.py``), and prints the report (Markdown, also
written to ``bench/results/latest.md``). Exit status 1 when any answer was not the
TwiML the target must give: a benchmark of error answers is worthless.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import profiling
from bench.accounts import fill
from bench.driver import Driver, progress
from bench.fleet import run_fleet
from bench.imports import measure as measure_imports
from bench.keys import audit
from bench.latency import measure_open_loop
from bench.load import Load, LoadError, find_wrk, wrk_version
from bench.plan import (
    GUNICORN_ARGS,
    OPEN_RATES,
    PRODUCT_KINDS,
    Plan,
    Store,
    full_plan,
    smoke_plan,
)
from bench.probe import Probe
from bench.report import Results, Row, render
from bench.server_models import run_servers
from bench.servers import (
    AUTH_TOKEN,
    REPO,
    Gunicorn,
    floor_env,
    product_config,
    product_env,
)  # fmt: skip
from bench.webhooks import Signer
from bench.workload import Workload
from ivr import config, create_app
from ivr.config import Settings
from ivr.embedded_redis import running_redis
from ivr.exceptions import ConfigError, DependencyError
from ivr.metrics import MULTIPROC_ENV
from ivr.store.hashing import PinHasher
from tests.live_server import serving
from workers.main import run as worker_run

PRODUCT_APP = "ivr:create_app()"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, no 10^6 store")
    parser.add_argument(
        "--profile", action="store_true", help="only profile one step with py-spy (no table)"
    )
    parser.add_argument(
        "--profile-target", default="pin", choices=("menu", "pin", "mix", "pin_large"),
    )  # fmt: skip
    parser.add_argument(
        "--fleet", action="store_true",
        help="one Redis and node vs. a Redis Cluster and two nodes (whole-call mix), "
        "and round trips per webhook on each topology",
    )  # fmt: skip
    parser.add_argument(
        "--servers", action="store_true",
        help="the product under gunicorn gthread, gunicorn gevent and granian (open loop)",
    )  # fmt: skip
    parser.add_argument("--wrk-threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = smoke_plan(args.wrk_threads) if args.smoke else full_plan(args.wrk_threads)
    if args.profile and not args.profile_target.endswith("_large"):
        plan = dataclasses.replace(plan, large_accounts=plan.small_accounts)  # no 10^6 fill
    try:
        mode = run_fleet if args.fleet else run_servers if args.servers else run
        return mode(plan, args)
    except (
        LoadError, RuntimeError, ConfigError, DependencyError, OSError, redis.RedisError,
    ) as exc:  # fmt: skip
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def run(plan: Plan, args: argparse.Namespace) -> int:
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    load = Load(find_wrk(), plan.wrk_threads, plan.connections)
    meta = _meta_start(plan, load)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp, running_redis() as server:
        work = Path(tmp)
        settings = _stores(plan, work, server.url, meta)
        client = redis.Redis.from_url(server.url)
        workload = _workload(plan, settings[Store.SMALL])
        with _servers(work, results_dir, server.url) as servers:
            driver = Driver(plan, load, workload, _target_urls(servers), work)
            if args.profile:
                return _profile(plan, driver, args.profile_target, servers, results_dir)
            measured = driver.rounds()
            opened = measure_open_loop(plan, driver, server.url)
        workload.close()
        res = Results(meta, {t.name: Row(t, measured[t.name]) for t in plan.targets()})
        res.open = opened
        # A Redis of its own: the loaded one may still be resizing its big key table,
        # which moves used_memory by megabytes while the probe reads it.
        with running_redis() as probe_server:
            probe_client = redis.Redis.from_url(probe_server.url)
            _probe(plan, res, _config_path(work, Store.LARGE), probe_server.url, probe_client)
            progress("auditing Redis keys and TTLs")
            res.keys = audit(client, "") + audit(probe_client, "(probe) ")
            probe_client.close()
        client.close()
        res.imports = measure_imports(plan.import_rows, work, server.url)
    res.meta.append(("load average at the end", _loadavg()))
    report = render(res)
    sys.stdout.write(report)
    (results_dir / "latest.md").write_text(report, encoding="utf-8")
    if res.invalid:
        print(f"error: {res.invalid} answers were not the expected TwiML", file=sys.stderr)
        return 1
    return 0


def _stores(
    plan: Plan, work: Path, redis_url: str, meta: list[tuple[str, str]]
) -> dict[Store, Settings]:
    """Write a config per store and fill it; returns the product's settings per store."""
    settings: dict[Store, Settings] = {}
    for store, count in ((Store.SMALL, plan.small_accounts), (Store.LARGE, plan.large_accounts)):
        db = f"sqlite:///{_db_path(work, store)}"
        path = product_config(_config_path(work, store), redis_url, db)
        settings[store] = config.load(path, env=product_env(path))
        started = time.monotonic()
        progress(f"filling the {store.value} PIN store with {count:,} accounts")
        fill(db, count, PinHasher.from_settings(settings[store].pin_store))
        meta.append((f"fill of {count:,} accounts (SQLite)", f"{time.monotonic() - started:.1f} s"))
    return settings


def _workload(plan: Plan, settings: Settings) -> Workload:
    accounts = {Store.SMALL: plan.small_accounts, Store.LARGE: plan.large_accounts}
    return Workload.for_settings(settings, AUTH_TOKEN, accounts)


def _config_path(work: Path, store: Store) -> Path:
    return work / f"ivr-{store.value}.toml"


@contextmanager
def _servers(work: Path, logs: Path, redis_url: str) -> Iterator[dict[str, Gunicorn]]:
    """Baseline, peer, floor and the product per store, all under the same settings."""
    apps = {
        "baseline": ("bench.baseline_app:create_app()", "/", dict(os.environ)),
        "peer": ("bench.peer_app:create_app()", "/ivr/welcome", dict(os.environ)),
        "floor": ("bench.floor_app:create_app()", "/", _small_floor_env(work, redis_url)),
    }
    for store in (Store.SMALL, Store.LARGE):
        apps[store.value] = (PRODUCT_APP, "/readyz", _served_env(work, store))
    servers = {
        name: Gunicorn(name, app, ready, logs / f"gunicorn-{name}.log", env=env)
        for name, (app, ready, env) in apps.items()
    }
    progress("starting gunicorn " + " ".join(GUNICORN_ARGS) + " for every server")
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _served_env(work: Path, store: Store) -> dict[str, str]:
    """The product's environment under gunicorn, as documented for production: metrics
    shared by the workers through a multiprocess directory of its own."""
    metrics = work / f"metrics-{store.value}"
    metrics.mkdir()
    return {**product_env(_config_path(work, store)), MULTIPROC_ENV: str(metrics)}


def _small_floor_env(work: Path, redis_url: str) -> dict[str, str]:
    """The floor reads the small store's accounts and signs like the product's server."""
    return floor_env(_config_path(work, Store.SMALL), redis_url, _db_path(work, Store.SMALL))


def _db_path(work: Path, store: Store) -> Path:
    return work / f"pins-{store.value}.sqlite3"


def _target_urls(servers: dict[str, Gunicorn]) -> dict[str, str]:
    urls = {name: servers[name].url for name in ("baseline", "peer", "floor")}
    urls["floor_menu"] = servers["floor"].url  # one floor app serves every step's floor
    for kind in sorted(PRODUCT_KINDS):
        urls[kind.value] = servers[Store.SMALL.value].url
        urls[f"{kind.value}_large"] = servers[Store.LARGE.value].url
    return urls


def _probe(plan: Plan, res: Results, config_file: Path, url: str, client: redis.Redis) -> None:
    """Memory per in-flight call and round trips per webhook, in-process, own Redis."""
    with serving(_crm_sink) as crm:
        # The CRM webhook on (a sink that accepts everything): a finished call's jobs.
        hook = {"webhook_url": f"{crm}/hook", "webhook_secret": "bench-crm-secret-0123456789"}
        settings = config.load(
            config_file, env=product_env(config_file),
            overrides={"redis": {"url": url}, "screen_pop": hook},
        )  # fmt: skip
        _probe_app(plan, res, settings, client)


def _crm_sink(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _burst(settings: Settings) -> bool:
    """One in-process burst of the worker, its log on stderr: rq would otherwise print
    every job on stdout, which is the report."""
    rq_log = logging.getLogger("rq.worker")
    if not rq_log.handlers:
        rq_log.addHandler(logging.StreamHandler(sys.stderr))
        rq_log.propagate = False
    return worker_run(settings, burst=True, with_scheduler=False)


def _probe_app(plan: Plan, res: Results, settings: Settings, client: redis.Redis) -> None:
    app = create_app(settings)
    try:
        workload = _workload(plan, settings)
        probe = Probe(app.test_client(), Signer(AUTH_TOKEN), workload, client)
        progress(f"measuring Redis memory over {plan.memory_calls:,} in-flight calls")
        res.memory = probe.memory(plan.memory_calls)
        progress(f"measuring Redis memory kept by {plan.memory_calls:,} finished calls")
        res.finished_bytes = probe.finished_memory(plan.memory_calls, lambda: _burst(settings))
        progress("counting Redis round trips per webhook")
        res.trips = probe.round_trips(plan.trip_samples)
        workload.close()
    finally:
        app.extensions["ivr"].close()


def _profile(plan: Plan, driver: Driver, name: str, servers: dict[str, Gunicorn], out: Path) -> int:
    """Load one product step with py-spy sampling both workers of its server."""
    target = next(t for t in plan.targets() if t.name == name)
    server = servers[target.store.value]
    driver.measure(target, plan.warmup_s)
    procs = profiling.start(server.workers(), plan.profile_s, out, name)
    m = driver.measure(target, plan.profile_s + 1)
    files = profiling.finish(procs, out, name)
    progress(f"profiled {name} at {m.rps:,.0f} req/s (slowed by the sampling)")
    for path in files:
        print(path)
    return 0


def _meta_start(plan: Plan, load: Load) -> list[tuple[str, str]]:
    rounds = f"{plan.rounds} interleaved rounds x {plan.measure_s} s per target"
    return [
        ("mode", "smoke (numbers mean little)" if plan.smoke else "full"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", _commit()),
        ("machine", f"{os.cpu_count()} CPUs, Python {platform.python_version()}"),
        ("load average at the start", _loadavg()),
        ("server", f"gunicorn {' '.join(GUNICORN_ARGS)} (same for every target)"),
        ("load generator", f"{wrk_version(load.wrk)}: {load.describe()}, own process"),
        (
            "runs",
            f"{'no' if plan.smoke else f'{plan.warmup_s} s'} warm-up per target, then {rounds}",
        ),
        (
            "open loop",
            f"bench/openloop.py (asyncio, raw HTTP/1.1, own process) at "
            f"{', '.join(map(str, OPEN_RATES))} webhooks/s, {plan.open_s:g} s per target and "
            f"rate; capacity probes of {plan.probe_s:g} s; overload {plan.overload_s:g} s",
        ),
        ("PIN stores", f"{plan.small_accounts:,} and {plan.large_accounts:,} accounts"),
        (
            "lockout",
            "limits raised to 1,000,000 so none triggers; every attempt still runs the "
            "counters (a 'locked' answer would count as unexpected)",
        ),
    ]


def _commit() -> str:
    try:
        head = subprocess.run(  # noqa: S603 - fixed argv, read-only
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
