"""The servers under test: gunicorn serving baseline, peer and the product, one port each.

The product runs exactly as documented for production (``gunicorn "ivr:create_app()"``
with ``IVR_CONFIG`` and the secrets in the environment), once per PIN store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.plan import GUNICORN_ARGS
from bench.webhooks import PUBLIC_BASE
from ivr.embedded_redis import free_port

REPO = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 - the benchmark's own
PEPPER = "bench-pepper-0123456789abcdef-0123"
API_TOKEN = "bench-api-token-0123456789abcdef"  # noqa: S105 - the benchmark's own
WORKFLOW_SID = "WW" + "0" * 32
# No lockout may trigger while thousands of PIN requests hit the same accounts, so the
# limits are out of reach; the counters still run in full for every submission.
LOCKOUT_LIMIT = 1_000_000
READY_TIMEOUT_S = 60


def product_config(path: Path, redis_url: str, db_url: str, queue_url: str = "") -> Path:
    """Write the product's TOML config for the benchmark; secrets go in the environment."""
    path.write_text(
        f"""# Written by bench/run. Secrets come from TWILIO_AUTH_TOKEN / IVR_PIN_PEPPER.
[server]
public_base_url = "{PUBLIC_BASE}"
[redis]
url = "{redis_url}"
[queue]
url = "{queue_url}"
[pin_store]
url = "{db_url}"
[lockout]
account_max_failures = {LOCKOUT_LIMIT}
caller_max_failures = {LOCKOUT_LIMIT}
[routing]
mode = "enqueue"
workflow_sid = "{WORKFLOW_SID}"
[api]
token = "{API_TOKEN}"
""",
        encoding="utf-8",
    )
    return path


def floor_env(config_file: Path, redis_url: str, db: Path) -> dict[str, str]:
    """The floor's environment: the product's secrets, the Redis and the PIN store ``db``."""
    return {**product_env(config_file), "FLOOR_REDIS_URL": redis_url, "FLOOR_PIN_DB": str(db)}


def product_env(config_file: Path) -> dict[str, str]:
    """The environment the product runs in: this one without stray IVR_, TWILIO_ or
    PROMETHEUS_ keys."""
    stray = ("IVR_", "TWILIO_", "PROMETHEUS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(stray)}
    env.update(
        {"IVR_CONFIG": str(config_file), "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_PIN_PEPPER": PEPPER}
    )
    return env


@dataclass
class Gunicorn:
    """One gunicorn master serving ``app`` on its own loopback port."""

    name: str
    app: str
    ready_path: str
    log: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        return [
            gunicorn, "--bind", f"127.0.0.1:{self.port}", *GUNICORN_ARGS,
            "--error-logfile", str(self.log), "--log-level", "warning", self.app,
        ]  # fmt: skip

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.command(), cwd=REPO, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self) -> None:
        """Block until the app answers ``ready_path`` with 200."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited: {self._log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn ({self.name}) did not become ready: {self._log_tail()}")

    def workers(self) -> list[int]:
        """PIDs of the worker processes (children of the master)."""
        if self.proc is None:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        lines = [line for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-3:]) or "(empty log)"
