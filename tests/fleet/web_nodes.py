"""One web node: the production command (gunicorn, the product's gthread worker) as a
child process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from tests.fleet.ports import free_port
from tests.fleet.procs import stats
from tests.fleet.redis_nodes import POLL_S, keep_logs, orphan_guard, tail

# The README's production line (tests/fleet/test_harness.py keeps them equal).
WORKER_CLASS = "ivr.serving.ThreadWorker"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
# Inherited settings that would silently change the node: the service's own config
# (IVR_*, TWILIO_*), shared metrics files, and gunicorn's extra command-line arguments.
SCRUBBED_PREFIXES = ("IVR_", "TWILIO_", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS")
# Loopback requests must never go through an http_proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, from /proc."""
    return [pid for pid, fields in stats() if fields[0] != "Z" and int(fields[2]) == pgid]


class WebNode:
    """``gunicorn "ivr:create_app()"`` (or another ``app``) on 127.0.0.1 in its own
    session; a context manager."""

    def __init__(
        self,
        env: Mapping[str, str],
        port: int | None = None,
        *,
        workers: int = 2,
        threads: int = 8,
        app: str = "ivr:create_app()",
    ) -> None:
        """``env`` (IVR_CONFIG etc.) overlays this process's environment minus the
        service's own settings (see SCRUBBED_PREFIXES); ``app`` is what gunicorn serves
        (it must answer ``GET /healthz`` with 200 once ready)."""
        self.port = port if port is not None else free_port()
        self.env = dict(env)
        self.workers = workers
        self.threads = threads
        self.app = app
        self.dir = Path(tempfile.mkdtemp(prefix=f"ivr-fleet-web-{self.port}-"))
        self.log = self.dir / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"WebNode(port={self.port}, {'running' if self.running else 'down'})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start gunicorn and wait until ``GET /healthz`` answers 200."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [
            str(gunicorn),
            "--worker-class", WORKER_CLASS,
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--bind", f"127.0.0.1:{self.port}",
            "--error-logfile", str(self.log),
            self.app,
        ]  # fmt: skip
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        # Output before the error log opens (bad arguments, import errors) lands here too.
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                env={**inherited, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # Own process group: kill() reaches the master and all its workers at once.
                start_new_session=True,
                preexec_fn=orphan_guard(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while (status := self.health()) != 200:
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                why = (
                    f"exited with code {code} while starting"
                    if code is not None
                    else f"gave no 200 on /healthz within {START_TIMEOUT_S:.0f} s (last: {status})"
                )
                raise RuntimeError(f"gunicorn on port {self.port} {why}\nlog: {tail(self.log)}")
            time.sleep(POLL_S * 2)

    def health(self, path: str = "/healthz") -> int | None:
        """Status of ``GET path`` now; None if nothing answers."""
        try:
            with DIRECT.open(self.url + path, timeout=1) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code
        except OSError:  # refused, reset or timed out while gunicorn loads the app
            return None

    def kill(self) -> None:
        """SIGKILL master and workers (a crashed machine) and wait until all are gone."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self._wait_group_gone(pgid)

    def stop(self) -> None:
        """SIGTERM the group (graceful), SIGKILL if it lingers; remove the log directory."""
        if self.proc is not None:
            pgid = self.proc.pid
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            # Workers a dying master did not reap, or the whole group if it hung.
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None
            self._wait_group_gone(pgid)
        if not keep_logs():
            shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_group_gone(self, pgid: int) -> None:
        # Orphaned workers are reaped by init, not by us: wait for them via /proc.
        deadline = time.monotonic() + 10
        while members := group_members(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn processes {members} outlived SIGKILL")
            time.sleep(POLL_S)

    def __enter__(self) -> WebNode:
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
