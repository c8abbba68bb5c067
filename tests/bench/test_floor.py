"""The benchmark's floor app really does the PIN step's checks and I/O it stands for.

Its throughput is the yardstick the product's PIN step is divided by, so a floor that
skipped the signature, the lookup or the compare would flatter the product.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from bench.accounts import Account, account, fill
from bench.floor_app import create_app
from bench.webhooks import Signer, Webhook, voice_params
from ivr.store.hashing import PinHasher

TOKEN = "floor-test-token-0123456789"
PEPPER = "floor-test-pepper-0123456789abcdef"
PATH = "/voice/step?node=pin&n=2&lang=en"


@pytest.fixture
def floor(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> FlaskClient:
    db = tmp_path / "pins.sqlite3"
    fill(f"sqlite:///{db}", 10, PinHasher({"k1": PEPPER.encode()}, "k1"))
    env = {
        "FLOOR_REDIS_URL": redis_url, "FLOOR_PIN_DB": str(db),
        "TWILIO_AUTH_TOKEN": TOKEN, "IVR_PIN_PEPPER": PEPPER,
    }  # fmt: skip
    return create_app(env).test_client()


def post(client: FlaskClient, acc: Account, digits: str, token: str = TOKEN) -> tuple[int, str]:
    hook = Webhook(PATH, voice_params("CA" + "1" * 32, acc.phone, digits=digits))
    signature = Signer(token).signature(hook)
    answer = client.post(PATH, data=hook.params, headers={"X-Twilio-Signature": signature})
    return answer.status_code, answer.get_data(as_text=True)


def test_right_pin_is_verified_and_wrong_pin_gathers_again(floor: FlaskClient) -> None:
    """The floor compares the entered PIN against the stored hash of the caller's account."""
    acc = account(3)
    status, body = post(floor, acc, acc.pin)
    assert status == 200 and '"reason":"verified"' in body
    status, body = post(floor, acc, acc.wrong_pin)
    assert status == 200 and "<Gather" in body and "verified" not in body


def test_forged_signature_is_refused(floor: FlaskClient, redis_client: redis.Redis) -> None:
    """A request signed with another token gets 403 and touches no Redis key."""
    acc = account(1)
    status, _ = post(floor, acc, acc.pin, token="not-the-token")
    assert status == 403
    assert redis_client.keys("floor:*") == []


def test_each_attempt_is_counted_saved_and_audited(
    floor: FlaskClient, redis_client: redis.Redis
) -> None:
    """Every attempt counts, saves the call and adds one digit-free audit entry, all expiring."""
    acc = account(2)
    post(floor, acc, acc.wrong_pin)
    post(floor, acc, acc.pin)
    assert redis_client.get(f"floor:tries:{acc.phone}") == b"2"
    entries: list[tuple[bytes, dict[bytes, bytes]]] = redis_client.xrange("floor:audit")  # type: ignore[assignment]
    assert [fields[b"v"] for _, fields in entries] == [b"wrong", b"verified"]
    assert not any(acc.pin.encode() in v for _, fields in entries for v in fields.values())
    for key in redis_client.keys("floor:*"):
        assert redis_client.ttl(key) > 0, key
