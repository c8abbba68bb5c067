"""``ivr worker`` through click's CliRunner, against the run's Redis."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from ivr.cli import cli
from ivr.cli.worker import worker
from ivr.config import RedisSettings, Settings
from ivr.services import Services
from ivr.store.audit import AuditStore
from tests.cli.helpers import assert_one_line_error
from tests.redis_server import free_port
from tests.workers.conftest import add_attempt


def invoke(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(worker, list(args), obj=settings)


def test_burst_runs_the_waiting_jobs(settings: Settings, services: Services) -> None:
    """``ivr worker --burst`` writes the journalled attempts to SQL and exits 0."""
    add_attempt(services.journal, services.link, "CA" + "5" * 32, "verified")
    result = invoke(settings, "--burst", "--queue", "audit")
    assert result.exit_code == 0, result.output
    assert AuditStore(services.pins.engine).count() == 1


def test_unknown_queue_is_one_line(settings: Settings) -> None:
    """A queue name that does not exist is refused with the choices, no traceback."""
    assert_one_line_error(invoke(settings, "--queue", "mail", "--burst"), "crm, notify, audit")


def test_missing_redis_url_is_one_line(settings: Settings) -> None:
    """Without [redis] url the worker says what is missing."""
    no_redis = dataclasses.replace(settings, redis=RedisSettings(url=""))
    assert_one_line_error(invoke(no_redis, "--burst"), "[redis] url")


def test_unreachable_redis_is_one_line(settings: Settings) -> None:
    """A Redis that refuses connections is one error line, not a traceback."""
    down = dataclasses.replace(
        settings, redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0")
    )
    assert_one_line_error(invoke(down, "--burst"), "Connection refused")


def test_commands_are_registered() -> None:
    """``ivr --help`` lists the worker and audit commands."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "worker" in result.output and "audit" in result.output


def test_worker_whose_parent_is_gone_does_not_start(tmp_path: Path, redis_url: str) -> None:
    """`ivr worker --parent-pid P` exits at once when P is not its parent any more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update(
        {
            "IVR_REDIS_URL": redis_url,
            "IVR_PIN_PEPPER": "p" * 32,
            "TWILIO_AUTH_TOKEN": "t" * 32,
            "IVR_ROUTING_NUMBER": "+4930901820",
        }
    )
    ivr = Path(sys.executable).with_name("ivr")
    # Without --burst a started worker would wait for jobs until the timeout.
    done = subprocess.run(
        [str(ivr), "worker", "--parent-pid", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Worker" not in done.stderr  # rq never announced a started worker
