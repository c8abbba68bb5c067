"""A web node whose PIN store is a private PostgreSQL the test may freeze, and how its
webhooks' answers are timed and judged (the deadline tests)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ivr import config
from ivr.services import build
from tests.conftest import API_TOKEN, PEPPER, seed
from tests.fleet.fleet import write_config
from tests.fleet.private_postgres import PrivatePostgres
from tests.twilio_phone import Twiml, parse_task

DEADLINE_S = 2.0


def timed(step: Callable[[], Twiml]) -> tuple[Twiml | None, float]:
    """The step's TwiML (None when the answer was not TwiML) and its answer time."""
    started = time.monotonic()
    try:
        twiml: Twiml | None = step()
    except AssertionError:  # Call.press: not TwiML (no answer, an error page)
        twiml = None
    return twiml, time.monotonic() - started


def seeded(
    tmp_path: Path, redis_url: str, pg: PrivatePostgres, max_failures: int
) -> dict[str, str]:
    """A web node's environment on ``pg`` (the test accounts in it) and Redis, deadline
    DEADLINE_S. The attempts answered unavailable stay counted (fail closed): the
    account limit ``max_failures`` must be above them for a later call to succeed."""
    path = tmp_path / "ivr.toml"
    write_config(path, redis_url, "", pg.url)
    env = {
        "IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER, "IVR_API_TOKEN": API_TOKEN,
        "IVR_REDIS_KEY_PREFIX": f"pg{uuid.uuid4().hex[:8]}",
        "IVR_SERVER_WEBHOOK_DEADLINE_S": str(DEADLINE_S),
        "IVR_LOCKOUT_ACCOUNT_MAX_FAILURES": str(max_failures),
    }  # fmt: skip
    services = build(config.load(path, env=env))
    try:
        seed(services)
    finally:
        services.close()
    return env


def assert_handed_over(twiml: Twiml | None) -> None:
    """The answer routed the caller to an agent as not identified, reason unavailable."""
    assert twiml is not None, "not answered with TwiML"
    task = parse_task(twiml)
    assert (task["identified"], task["reason"]) == (False, "unavailable"), task
