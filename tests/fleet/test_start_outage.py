"""The production server starts, serves and recovers while a dependency is down.

Bound proved: with Redis, PostgreSQL or the SQLite file unreachable, gunicorn boots
(also a worker restarted during the outage: a worker that fails to boot would shut the
master down), ``/readyz`` says not ready, and every webhook is answered with TwiML that
routes the caller as not identified (reason ``unavailable``) — what is lost is only the
identification during the outage. When the dependency returns, the node becomes ready
and identifies callers within :data:`RECOVERY_S`, without a restart.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr import config
from ivr.services import build
from tests.conftest import ACCOUNTS, AUTH_TOKEN, PEPPER, SINGLE_OWNER, seed
from tests.fleet.fleet import write_config
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.fleet.private_postgres import PrivatePostgres
from tests.fleet.redis_nodes import RedisNode, tail
from tests.fleet.web_nodes import WebNode, group_members
from tests.measured import report
from tests.twilio_phone import Call, Twiml, parse_task

PIN = ACCOUNTS[0][3]
RECOVERY_S = 15.0
POLL_S = 0.2


@dataclass
class Outage:
    """A node's environment with one dependency down, and how to bring it back."""

    env: dict[str, str]
    restore: Callable[[], None]


def seeded(path: Path, env: dict[str, str]) -> None:
    """The test accounts in the PIN store of the config at ``path``."""
    services = build(config.load(path, env=env))
    try:
        seed(services)
    finally:
        services.close()


def environment(path: Path) -> dict[str, str]:
    return {"IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER,
            "IVR_REDIS_KEY_PREFIX": f"down{uuid.uuid4().hex[:8]}"}  # fmt: skip


@contextmanager
def redis_down(work: Path, redis_url: str) -> Iterator[Outage]:
    """Redis not started yet (nothing listens on its port); the PIN store on SQLite."""
    with ExitStack() as stack:
        node = RedisNode()
        stack.callback(node.stop)
        db_url = f"sqlite:///{work / 'pins.sqlite3'}"
        path = work / "ivr.toml"
        write_config(path, f"redis://{node.addr}/0", "", db_url)
        env = environment(path)
        seeded(path, env)
        yield Outage(env, node.start)


@contextmanager
def postgres_down(work: Path, redis_url: str) -> Iterator[Outage]:
    """The PIN store's PostgreSQL seeded, then stopped (connections refused)."""
    with PrivatePostgres() as pg:
        path = work / "ivr.toml"
        write_config(path, redis_url, "", pg.url)
        env = environment(path)
        seeded(path, env)
        pg.stop()
        yield Outage(env, pg.start)


@contextmanager
def sqlite_missing(work: Path, redis_url: str) -> Iterator[Outage]:
    """The SQLite file's directory does not exist yet (an unmounted volume)."""
    volume = work / "volume"
    path = work / "ivr.toml"
    write_config(path, redis_url, "", f"sqlite:///{volume / 'pins.sqlite3'}")
    env = environment(path)

    def mount() -> None:
        volume.mkdir()
        seeded(path, env)

    yield Outage(env, mount)


OUTAGES = {"redis": redis_down, "postgres": postgres_down, "sqlite": sqlite_missing}


def through(call: Call) -> Twiml:
    """Start the call and answer the menu and the PIN prompt while they are asked."""
    twiml = call.start()
    for keys in ("1", PIN):
        if twiml.gather is None:
            break
        twiml = call.press(keys)
    return twiml


def wait_until(check: Callable[[], bool], seconds: float) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(POLL_S)
    return time.monotonic() - started


def restart_a_worker(node: WebNode) -> None:
    """SIGKILL one gunicorn worker and wait until the master has booted a new one."""
    assert node.proc is not None
    master = node.proc.pid
    workers = [pid for pid in group_members(master) if pid != master]
    os.kill(workers[0], signal.SIGKILL)
    wait_until(lambda: len([p for p in group_members(master) if p != master]) == len(workers)
               and workers[0] not in group_members(master), 20)  # fmt: skip
    time.sleep(1.0)  # the new worker's app is built meanwhile (it fails or not)
    assert node.running, tail(node.log)


@pytest.mark.parametrize("dependency", list(OUTAGES))
def test_the_service_starts_and_recovers_without_a_dependency(
    dependency: str, redis_url: str, tmp_path: Path
) -> None:
    """Started with the dependency down, gunicorn boots and stays up (a worker restarted
    meanwhile too), /readyz says not ready, every webhook routes as unavailable; when it
    returns, the node becomes ready and identifies callers."""
    with OUTAGES[dependency](tmp_path, redis_url) as outage, WebNode(outage.env) as node:
        hits = Webhooks()

        def place() -> Call:
            return Call(HttpPoster([node.url], hits), AUTH_TOKEN, SINGLE_OWNER)

        assert node.health("/readyz") == 503
        restart_a_worker(node)
        for _ in range(3):
            task = parse_task(through(place()))
            assert (task["identified"], task["reason"]) == (False, "unavailable"), task
        assert node.health("/readyz") == 503
        outage.restore()
        ready_s = wait_until(lambda: node.health("/readyz") == 200, RECOVERY_S)

        def identified() -> bool:
            return parse_task(through(place()))["identified"] is True

        wait_until(identified, RECOVERY_S)
        assert all(hit.status == 200 for hit in hits.hits), hits.hits
        assert "Worker failed to boot" not in tail(node.log, 100_000)
        report(
            f"[start] {dependency} down at start-up: node served every webhook; "
            f"ready {ready_s:.1f} s after it returned"
        )
