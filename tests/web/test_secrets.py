"""The PIN never reaches logs, Redis, the screen-pop or error output (SPEC §5)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import ACCOUNTS, API_TOKEN, SINGLE_OWNER
from tests.twilio_phone import Call

Phone = Callable[..., Call]
WRONG_PINS = ("864209", "975310")


def _raw(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def redis_dump(client: redis.Redis) -> bytes:
    """Every key and value in Redis, as one blob (read per type: DUMP may compress)."""
    parts: list[bytes] = []
    for key in client.scan_iter("*"):
        parts.append(_raw(key))
        kind = _raw(client.type(key))
        if kind == b"string":
            parts.append(_raw(client.get(key) or b""))
        elif kind == b"hash":
            parts += [_raw(f) + _raw(v) for f, v in client.hgetall(key).items()]
        elif kind == b"zset":
            parts += [_raw(m) for m in client.zrange(key, 0, -1)]
        elif kind == b"list":
            parts += [_raw(m) for m in client.lrange(key, 0, -1)]
        elif kind == b"set":
            parts += [_raw(m) for m in client.smembers(key)]
    return b"".join(parts)


def test_pins_never_logged_or_stored(
    phone: Phone,
    client: FlaskClient,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After wrong and right PINs, no PIN appears in logs, Redis keys/values or the API."""
    caplog.set_level(logging.DEBUG)
    right = ACCOUNTS[0][3]
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", *WRONG_PINS, right)
    other = phone(caller="anonymous")
    other.walk("1", "200002#", WRONG_PINS[0])
    api = client.get(
        f"/api/calls/{call.call_sid}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert api.get_json()["identified"] is True
    dump = redis_dump(redis_client)
    assert dump, "Redis should hold call state and counters"
    for pin in (*WRONG_PINS, right):
        assert pin not in caplog.text
        assert pin.encode() not in dump
        assert pin not in api.get_data(as_text=True)
        for twiml in call.history:
            assert pin not in twiml.text()


def test_every_redis_key_expires(phone: Phone, redis_client: redis.Redis) -> None:
    """Every key the product writes during calls carries a TTL."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "000000", ACCOUNTS[0][3])
    phone(caller="anonymous").walk("1", "987654#", "000000")
    keys = list(redis_client.scan_iter("*"))
    assert keys
    for key in keys:
        assert redis_client.ttl(key) > 0, key
