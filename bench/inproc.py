"""``python -m bench.inproc``: CPU cost per webhook, in-process, for quick iteration.

No gunicorn, no wrk: each target's WSGI app is called directly with the very requests
``bench/run`` sends (signed like Twilio, each product request on its own prepared call),
one after another on one thread. It prints microseconds per request and the ratio to
the peer, the numbers ``bench/run`` turns into throughput minus the HTTP server's share.
``--profile KIND`` writes a cProfile of that target to ``bench/results/KIND.prof`` and
prints its top functions. Not a substitute for ``bench/run``: that is the measurement.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.accounts import fill
from bench.baseline_app import create_app as baseline_app
from bench.floor_app import create_app as floor_app
from bench.peer_app import create_app as peer_app
from bench.plan import Kind, Store
from bench.servers import AUTH_TOKEN, REPO, floor_env, product_config, product_env
from bench.webhooks import PUBLIC_BASE
from bench.workload import Workload
from ivr import config, create_app
from ivr.embedded_redis import running_redis
from ivr.store.hashing import PinHasher

Environ = dict[str, Any]
WsgiApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]
HOST = PUBLIC_BASE.split("://", 1)[1]


def environ(line: str) -> Environ:
    """The WSGI environ gunicorn would build for one request line of ``bench/run``."""
    method, target, signature, body = line.rstrip("\n").split("\t")
    path, _, query = target.partition("?")
    data = body.encode("ascii")
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": HOST,
        "HTTP_X_TWILIO_SIGNATURE": signature,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def drive(app: WsgiApp, environs: Sequence[Environ]) -> float:
    """Seconds per request for ``environs`` answered by ``app`` (every answer checked)."""
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    gc.collect()  # garbage of the previous target must not be collected on this one's clock
    started = time.perf_counter()
    for env in environs:
        for _ in app(env, start_response):
            pass
    elapsed = time.perf_counter() - started
    bad = [s for s in statuses if not s.startswith(("200", "204"))]
    if bad:
        raise SystemExit(f"error: {len(bad)} answers were not 200/204, e.g. {bad[0]}")
    return elapsed / len(environs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=[k.value for k in Kind])
    args = parser.parse_args(argv)
    with running_redis() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'pins.sqlite3'}"
        path = product_config(work / "ivr.toml", server.url, db)
        settings = config.load(path, env=product_env(path))
        fill(db, 1000, PinHasher.from_settings(settings.pin_store))
        product = create_app(settings)
        accounts = {Store.SMALL: 1000, Store.LARGE: 1000}
        workload = Workload.for_settings(settings, AUTH_TOKEN, accounts)
        apps: dict[Kind, WsgiApp] = {
            Kind.BASELINE: baseline_app(), Kind.PEER: peer_app(),
            Kind.FLOOR: floor_app(floor_env(path, server.url, work / "pins.sqlite3")),
            Kind.MENU: product, Kind.PIN: product, Kind.MIX: product,
        }  # fmt: skip
        if args.profile:
            return _profile(Kind(args.profile), apps, workload, args.requests)
        results: dict[Kind, list[float]] = {kind: [] for kind in apps}
        for _ in range(args.rounds + 1):  # the first round warms up
            for kind, app in apps.items():
                lines = workload.lines(kind, Store.SMALL, args.requests)
                results[kind].append(drive(app, [environ(line) for line in lines]))
        peer = min(results[Kind.PEER][1:])
        for kind, times in results.items():
            best = min(times[1:])
            print(f"{kind.value:10} {best * 1e6:8.1f} us/request  peer/this {peer / best:5.2f}")
    return 0


def _profile(kind: Kind, apps: dict[Kind, WsgiApp], workload: Workload, count: int) -> int:
    drive(apps[kind], [environ(line) for line in workload.lines(kind, Store.SMALL, count)])
    environs = [environ(line) for line in workload.lines(kind, Store.SMALL, count)]
    profiler = cProfile.Profile()
    profiler.enable()
    drive(apps[kind], environs)
    profiler.disable()
    out = REPO / "bench" / "results" / f"{kind.value}.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(out))
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
