"""SPEC §6: whatever fails, the caller hears valid TwiML and reaches an agent, fast.

These tests own their Redis server so they can stop it or freeze it mid-call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from ivr.config import Settings
from ivr.flow.actions import Reason
from ivr.services import Services
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.redis_server import RedisProcess
from tests.slow_redis import slowed
from tests.sqlite_lock import locked
from tests.twilio_phone import Call, Twiml, parse_task

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
# Twilio waits 15 s; a stuck dependency must not get anywhere near that.
HANG_BOUND_S = 2.0


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A Redis server for this test alone."""
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(own_redis: RedisProcess) -> str:
    """Point the app at the test's own Redis."""
    return own_redis.url


@pytest.fixture
def redis_client(own_redis: RedisProcess) -> Iterator[redis.Redis]:
    """A client on the test's own Redis; nothing to clean up, the server goes away."""
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    yield client
    client.close()


def assert_unavailable(twiml: Twiml) -> None:
    assert twiml.status == 200
    task = parse_task(twiml)
    assert task["identified"] is False and task["reason"] == "unavailable"


def timed(action: Callable[[], Twiml]) -> Twiml:
    started = time.monotonic()
    result = action()
    assert time.monotonic() - started < HANG_BOUND_S
    return result


def test_redis_stopped_mid_call_routes_unavailable(phone: Phone, own_redis: RedisProcess) -> None:
    """Redis dying between steps still gets the caller to an agent, not identified."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    own_redis.stop()
    assert_unavailable(timed(lambda: call.press(PIN_ANNA)))


def test_redis_hung_mid_call_answers_fast(phone: Phone, own_redis: RedisProcess) -> None:
    """A frozen Redis (accepting, never answering) costs part of the webhook's deadline,
    never more than the deadline: the caller is routed unavailable within it."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    own_redis.pause()
    try:
        assert_unavailable(timed(lambda: call.press(PIN_ANNA)))
    finally:
        own_redis.resume()


SLOW_S = 0.5


@pytest.mark.parametrize("keys", [("1", PIN_ANNA), ("1",)], ids=["pin", "menu"])
def test_a_slow_redis_is_waited_for_while_the_deadline_has_room(
    phone: Phone, redis_client: redis.Redis, settings: Settings, keys: tuple[str, ...]
) -> None:
    """A Redis that answers a step 0.45 s late (longer than [redis] socket_timeout_s,
    well within the webhook deadline) delays the caller but does not route them
    unavailable: the PIN is verified, the menu choice leads to the PIN prompt."""
    assert settings.redis.socket_timeout_s < SLOW_S - 0.1 < settings.server.webhook_deadline_s
    call = phone(caller=SINGLE_OWNER)
    call.walk(*keys[:-1])
    busy = slowed(redis_client, SLOW_S)
    started = time.monotonic()
    twiml = call.press(keys[-1])
    elapsed = time.monotonic() - started
    busy.join()
    assert settings.redis.socket_timeout_s < elapsed < settings.server.webhook_deadline_s
    if keys[-1] == PIN_ANNA:
        task = parse_task(twiml)
        assert (task["identified"], task["reason"]) == (True, "verified")
    else:
        assert twiml.gather is not None and twiml.root.find("Enqueue") is None


def frozen(server: RedisProcess, client: redis.Redis) -> Callable[[], None]:
    """Freeze Redis (SIGSTOP: it runs what it received once it wakes); returns the thaw."""
    server.pause()
    return server.resume


def full(server: RedisProcess, client: redis.Redis) -> Callable[[], None]:
    """Fill Redis (maxmemory below its use, noeviction: every write refused); returns the
    fix."""
    client.config_set("maxmemory", 1)

    def fix() -> None:
        client.config_set("maxmemory", 0)

    return fix


@pytest.mark.parametrize("overrides", [{"pin_store": {"timeout_s": 10.0}}])
@pytest.mark.parametrize("fault", [frozen, full])
def test_a_step_whose_save_fails_is_saved_once_redis_answers(
    phone: Phone,
    own_redis: RedisProcess,
    redis_client: redis.Redis,
    services: Services,
    settings: Settings,
    fault: Callable[[RedisProcess, redis.Redis], Callable[[], None]],
) -> None:
    """A PIN step whose save fails (Redis frozen, or full) routes the caller as
    unavailable, and within 2.5 s of Redis taking writes again the call is stored as the
    caller heard it: not left "in IVR" (the full Redis refused the save), nor "verified"
    (the frozen Redis ran the stalled save on waking)."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    holder = locked(settings)  # the PIN check waits here, after the lockout count
    undo: list[Callable[[], None]] = []

    def fault_then_release() -> None:
        undo.append(fault(own_redis, redis_client))
        holder.release()

    threading.Timer(0.3, fault_then_release).start()
    try:
        assert_unavailable(call.press(PIN_ANNA))
    finally:
        undo[0]()
    until = time.monotonic() + 2.5
    stored = services.calls.calls.load(call.call_sid)
    while stored is None or stored.reason is not Reason.UNAVAILABLE:
        assert time.monotonic() < until, f"still stored as {stored}"
        time.sleep(0.1)
        stored = services.calls.calls.load(call.call_sid)
    assert (stored.routed, stored.identified) == (True, False)


def test_redis_down_at_call_start(phone: Phone, own_redis: RedisProcess) -> None:
    """A call arriving while Redis is down is routed at once as unavailable."""
    own_redis.stop()
    assert_unavailable(timed(lambda: phone().start()))


def test_redis_hung_at_status_callback(
    phone: Phone, own_redis: RedisProcess, client: FlaskClient
) -> None:
    """The status callback answers 204 even when Redis hangs."""
    call = phone()
    call.start()
    own_redis.pause()
    try:
        started = time.monotonic()
        assert call.hang_up().status_code == 204
        assert time.monotonic() - started < HANG_BOUND_S
    finally:
        own_redis.resume()


def test_pin_store_down_routes_unavailable(
    phone: Phone, services: Services, tmp_path: Path
) -> None:
    """A PIN store that stops answering mid-call routes the caller as unavailable."""
    call = phone(caller=SINGLE_OWNER)
    call.start()
    services.pins.close()  # drop pooled connections to the old file
    (tmp_path / "pins.sqlite3").unlink()
    (tmp_path / "pins.sqlite3").mkdir()  # a directory: SQLite cannot open it
    assert_unavailable(timed(lambda: call.press("1")))


def test_unknown_call_sid_on_step(phone: Phone) -> None:
    """A step for a CallSid the IVR never saw routes the caller as unavailable."""
    first = phone()
    first.start()
    stranger = phone()
    stranger.last = first.last
    assert_unavailable(stranger.press("1"))


def test_fallback_url_routes_unavailable(phone: Phone) -> None:
    """Twilio's fallback URL hands the caller to an agent as not identified."""
    call = phone()
    call.start()
    response = call.post("/voice/fallback", call.params(ErrorCode="11200"))
    assert_unavailable(Twiml.parse(response))
