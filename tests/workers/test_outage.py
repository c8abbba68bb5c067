"""``ivr worker`` outlives its Redis: killed and restarted, or refusing writes (OOM).

A real ``ivr worker`` process serves a redis-server that the test starts, kills and
fills up; the jobs enqueued meanwhile must be done once Redis is back, by the same
process, and the backlog's age must show while they wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from rq.job import Job

from ivr import config
from ivr.backlog import oldest_waiting_s
from ivr.config import Settings
from ivr.jobs import PURGE_AUDIT, QUEUE_AUDIT, JobQueues
from ivr.services import build
from ivr.store.audit_journal import AuditJournal
from ivr.store.keys import KeyLayout
from ivr.store.redis_client import close_client, open_link
from tests.conftest import PEPPER, seed
from tests.fleet.fleet import write_config
from tests.fleet.redis_nodes import RedisNode, wait_for
from tests.measured import report

# The worker pauses 1, 2, 4 … s between attempts while Redis is gone: a job enqueued
# after Redis returns is done within the next pause plus rq's start-up.
DRAINED_WITHIN_S = 30


@pytest.fixture
def queue_redis() -> Iterator[RedisNode]:
    """A redis-server of this test alone (it is killed and filled up)."""
    with RedisNode() as node:
        yield node


@pytest.fixture
def worker_config(queue_redis: RedisNode, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """A config on that Redis and a seeded SQLite PIN store, and the worker's environment."""
    path = tmp_path / "ivr.toml"
    url = f"redis://{queue_redis.addr}/0"
    write_config(path, url, "", f"sqlite:///{tmp_path / 'pins.sqlite3'}")
    env = {"IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER}
    settings = config.load(path, env=env)
    services = build(settings)
    try:
        seed(services)
    finally:
        services.close()
    return settings, env


@contextmanager
def running_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``ivr worker`` until the block ends (SIGTERM, then SIGKILL if it lingers)."""
    ivr = Path(sys.executable).with_name("ivr")
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(ivr), "worker"], env={**os.environ, **env}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def enqueue(node: RedisNode, jid: str) -> redis.Redis:
    """An audit purge job ``jid`` on ``node``; returns the client (close it)."""
    client = node.client(socket_timeout=5)
    JobQueues(client).enqueue(QUEUE_AUDIT, PURGE_AUDIT, [], jid, 1)
    return client


def done(client: redis.Redis, jid: str) -> bool | None:
    """True once the job is finished and gone (rq keeps no result), else None."""
    try:
        return (not Job.exists(jid, connection=client)) or None
    except redis.ConnectionError:
        return None


def alive(worker: subprocess.Popen[bytes], log: Path) -> None:
    """Fail with the worker's log if it has exited."""
    assert worker.poll() is None, log.read_text(errors="replace")[-3000:]


def test_worker_drains_after_its_redis_is_killed_and_restarted(
    queue_redis: RedisNode, worker_config: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    """With its Redis SIGKILLed for 3 s and started again (empty), the same worker process
    does a job enqueued afterwards within 30 s, and drains an audit attempt journalled
    then into SQL."""
    settings, env = worker_config
    log = tmp_path / "worker.log"
    with running_worker(env, log) as worker:
        wait_for("the worker to listen", lambda: "Listening on" in log.read_text() or None, 20)
        queue_redis.kill()
        time.sleep(3)
        alive(worker, log)
        queue_redis.start()
        back = time.monotonic()
        client = enqueue(queue_redis, "purge-after-restart")
        link = open_link(settings.redis)
        try:
            journal = AuditJournal(link, KeyLayout())
            for cmd in journal.entry(
                "CA" + "7" * 32, "200001", None, "wrong", "2026-12-03T10:00:00+00:00"
            ):
                link.client.execute_command(*cmd.args)
            wait_for("the job to be done", lambda: done(client, "purge-after-restart"),
                     DRAINED_WITHIN_S)  # fmt: skip
            drained = time.monotonic() - back
            wait_for("the journal to be drained", lambda: journal.backlog() == 0 or None, 30)
        finally:
            close_client(client)
            link.close()
        alive(worker, log)
    report(f"[worker] queue Redis killed 3 s, restarted: job done {drained:.1f} s after it")


def test_worker_outlives_a_full_redis(
    queue_redis: RedisNode, worker_config: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    """A worker started while its Redis refuses writes (maxmemory, noeviction) keeps
    trying instead of exiting; the waiting job's age shows as the backlog, and once
    Redis has room again the job is done by the same process."""
    settings, env = worker_config
    client = enqueue(queue_redis, "purge-while-full")
    link = open_link(settings.redis)
    log = tmp_path / "worker.log"
    try:
        queue_redis.call("CONFIG", "SET", "maxmemory", "1")  # every write is refused (OOM)
        with running_worker(env, log) as worker:
            wait_for("the worker to meet the full Redis",
                     lambda: "OutOfMemoryError" in log.read_text() or None, 20)  # fmt: skip
            time.sleep(2)
            alive(worker, log)
            assert not done(client, "purge-while-full")
            ages = oldest_waiting_s(client, AuditJournal(link, KeyLayout()))
            assert ages[QUEUE_AUDIT] >= 2
            queue_redis.call("CONFIG", "SET", "maxmemory", "0")
            room = time.monotonic()
            wait_for("the job to be done", lambda: done(client, "purge-while-full"),
                     DRAINED_WITHIN_S)  # fmt: skip
            drained = time.monotonic() - room
            alive(worker, log)
    finally:
        close_client(client)
        link.close()
    report(f"[worker] queue Redis full (OOM) then freed: job done {drained:.1f} s after it")


def test_worker_started_during_an_outage_waits_for_its_dependencies(tmp_path: Path) -> None:
    """Started while its Redis is down and the audit database's directory is missing,
    ``ivr worker`` waits instead of exiting, and serves once both are there."""
    node = RedisNode()  # not started: nothing listens on its port
    volume = tmp_path / "volume"
    path = tmp_path / "ivr.toml"
    write_config(path, f"redis://{node.addr}/0", "", f"sqlite:///{volume / 'pins.sqlite3'}")
    log = tmp_path / "worker.log"
    try:
        with running_worker({"IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER}, log) as worker:
            wait_for("the worker to wait", lambda: "waiting for a dependency" in
                     log.read_text() or None, 20)  # fmt: skip
            time.sleep(2)
            alive(worker, log)
            node.start()
            time.sleep(2)
            alive(worker, log)
            volume.mkdir()
            back = time.monotonic()
            client = enqueue(node, "purge-after-start")
            try:
                wait_for("the job to be done", lambda: done(client, "purge-after-start"),
                         DRAINED_WITHIN_S)  # fmt: skip
            finally:
                close_client(client)
            alive(worker, log)
    finally:
        node.stop()
    report(
        f"[worker] started with Redis and SQL down: job done {time.monotonic() - back:.1f} s "
        "after both returned"
    )
