"""The benchmark's floors really do the checks and I/O of the steps they stand for.

A product step's throughput is divided by its floor's, so a floor that skipped the
signature, the call's load, the lookup, the compare or the save would make the ratio
meaningless. The PIN floor is checked on its own; the menu and customer-number floors
side by side with the product (same PIN store, same secrets, same requests): same kind
of answer, same Redis round trips, the same facts saved.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask.testing import FlaskClient

from bench.accounts import Account, account, fill
from bench.floor_app import call_key, call_state, create_app
from bench.floor_requests import (
    FloorCall,
    customer_number_call,
    menu_call,
    pin_call,
    prepare,
    unknown_caller,
)
from bench.probe import counting
from bench.servers import AUTH_TOKEN, floor_env, product_config, product_env
from bench.webhooks import CallSids, Signer, Webhook, voice_params
from ivr import config
from ivr import create_app as create_product
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout

TOKEN = "floor-test-token-0123456789"
PEPPER = "floor-test-pepper-0123456789abcdef"
PATH = "/voice/step?node=pin&n=2&lang=en"
SIDS = CallSids()


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
    hook = pin_call("CA" + "1" * 32, acc.phone, digits).hook
    assert hook.path.startswith("/voice/step?node=pin&n=2&")  # the product's PIN-step URL
    signature = Signer(token).signature(hook)
    answer = client.post(hook.path, data=hook.params, headers={"X-Twilio-Signature": signature})
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


# --- menu and customer-number floors, side by side with the product ---------------------


@dataclass
class Answer:
    """What a webhook's answer does, and the Redis round trips serving it took."""

    outcome: str  # "http 403", "gather <node> <n>" or "route <reason>"
    trips: int


@dataclass
class Pair:
    """The product and the floor app on one PIN store and Redis, with the bench's secrets."""

    product: FlaskClient
    floor: FlaskClient
    redis: redis.Redis
    keys: KeyLayout

    def send(self, client: FlaskClient, hook: Webhook, token: str = AUTH_TOKEN) -> Answer:
        signature = Signer(token).signature(hook)
        with counting() as counter:
            answer = client.post(
                hook.path, data=hook.params, headers={"X-Twilio-Signature": signature}
            )
        return Answer(outcome(answer.status_code, answer.get_data(as_text=True)), counter.trips)

    def product_at(self, node: str, caller: str) -> Webhook:
        """A new product call walked to ``node`` (menu, or customer_number via key 1):
        its Gather's URL, with no digits yet."""
        sid = SIDS.new()
        hook = Webhook("/voice", voice_params(sid, caller, status="ringing"))
        path = self._action(hook)
        if node == "customer_number":
            path = self._action(Webhook(path, voice_params(sid, caller, digits="1")))
        assert f"node={node}&" in path, path
        return Webhook(path, voice_params(sid, caller))

    def product_state(self, call_sid: str) -> dict[str, object]:
        blob = self.redis.get(self.keys.call(call_sid))
        assert isinstance(blob, bytes)
        state: dict[str, object] = json.loads(blob)
        return state

    def _action(self, hook: Webhook) -> str:
        answer = self.product.post(
            hook.path, data=hook.params,
            headers={"X-Twilio-Signature": Signer(AUTH_TOKEN).signature(hook)},
        )  # fmt: skip
        found = re.search(r'<Gather action="([^"]+)"', answer.get_data(as_text=True))
        assert found is not None
        return html.unescape(found[1])


def outcome(status: int, body: str) -> str:
    """An HTTP error, the Gather of a node at its step number, or a route with its reason."""
    if status != 200:
        return f"http {status}"
    gather = re.search(r'<Gather action="([^"]+)"', body)
    if gather is not None:
        url = urlsplit(html.unescape(gather[1]))
        query = parse_qs(url.query)
        node = query.get("node", [url.path.rsplit("/", 1)[-1]])[0]
        return f"gather {node} {query['n'][0]}"
    reason = re.search(r'"reason":\s*"(\w+)"', body)
    return f"route {reason[1] if reason else '?'}"


@pytest.fixture
def pair(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[Pair]:
    db = tmp_path / "pins.sqlite3"
    path = product_config(tmp_path / "ivr.toml", redis_url, f"sqlite:///{db}")
    settings = config.load(path, env=product_env(path))
    fill(f"sqlite:///{db}", 10, PinHasher.from_settings(settings.pin_store))
    app = create_product(settings)
    floor = create_app(floor_env(path, redis_url, db)).test_client()
    both = Pair(app.test_client(), floor, redis_client, KeyLayout(settings.redis.key_prefix))
    # Warm-up: scripts loaded and connections open, as in a server that has run a while.
    acc = account(9)
    at_menu = both.product_at("menu", acc.phone)
    both.send(both.product, with_digits(at_menu, "1"))
    call = menu_call(SIDS.new(), acc.phone)
    prepare(redis_client, [call])
    both.send(both.floor, call.hook)
    yield both
    app.extensions["ivr"].close()


def with_digits(hook: Webhook, digits: str) -> Webhook:
    return Webhook(
        hook.path, voice_params(hook.params["CallSid"], hook.params["From"], digits=digits)
    )


def tampered(hook: Webhook, how: str) -> Webhook:
    """``hook`` as it should not be served as a normal step."""
    if how == "unknown call":
        return Webhook(hook.path, {**hook.params, "CallSid": SIDS.new()})
    if how == "another step's request":
        return Webhook(re.sub(r"([?&]n=)\d+", r"\g<1>7", hook.path), hook.params)
    return hook


def compare(pair: Pair, product: Webhook, call: FloorCall, how: str) -> tuple[Answer, Answer]:
    """The same request, tampered ``how``, answered by the product and by the floor."""
    prepare(pair.redis, [call])
    token = "not-the-token" if how == "forged signature" else AUTH_TOKEN
    return (
        pair.send(pair.product, tampered(product, how), token),
        pair.send(pair.floor, tampered(call.hook, how), token),
    )


MENU_CASES = [
    ("1", "owner", "", "gather pin 2"),
    ("3", "owner", "", "gather pin 2"),
    ("1", "unknown", "", "gather customer_number 2"),
    ("5", "owner", "", "gather menu 2"),
    ("", "owner", "", "gather menu 2"),
    ("1", "owner", "unknown call", "route unavailable"),
    ("1", "owner", "another step's request", "route unavailable"),
    ("1", "owner", "forged signature", "http 403"),
]


@pytest.mark.parametrize(("key", "caller", "how", "expected"), MENU_CASES)
def test_menu_floor_answers_like_the_product_with_its_round_trips(
    pair: Pair, key: str, caller: str, how: str, expected: str
) -> None:
    """For each menu input, good or bad, the floor answers as the product does with as many
    Redis round trips: the call loaded, the caller looked up, the step saved, or refused."""
    acc = account(4)
    phone = acc.phone if caller == "owner" else unknown_caller(acc)
    at_menu = pair.product_at("menu", phone)
    product, floor = compare(
        pair, with_digits(at_menu, key), menu_call(SIDS.new(), phone, key), how
    )
    assert (product.outcome, floor.outcome) == (expected, expected)
    assert floor.trips == product.trips


CUSTOMER_NUMBER_CASES = [
    ("10000005#", "", "gather pin 3"),
    ("10000005", "", "gather pin 3"),
    ("99999999#", "", "gather pin 3"),  # no such account: the product does not tell
    ("1234567890123#", "", "gather customer_number 3"),  # longer than 12 digits
    ("12a4#", "", "gather customer_number 3"),
    ("", "", "gather customer_number 3"),
    ("10000005#", "unknown call", "route unavailable"),
    ("10000005#", "another step's request", "route unavailable"),
    ("10000005#", "forged signature", "http 403"),
]


@pytest.mark.parametrize(("typed", "how", "expected"), CUSTOMER_NUMBER_CASES)
def test_customer_number_floor_answers_like_the_product_with_its_round_trips(
    pair: Pair, typed: str, how: str, expected: str
) -> None:
    """For each customer number typed, good or bad, the floor answers as the product does
    with as many Redis round trips."""
    phone = unknown_caller(account(5))
    at_prompt = pair.product_at("customer_number", phone)
    call = customer_number_call(SIDS.new(), phone, typed)
    product, floor = compare(pair, with_digits(at_prompt, typed), call, how)
    assert (product.outcome, floor.outcome) == (expected, expected)
    assert floor.trips == product.trips


def floor_fields(pair: Pair, call: FloorCall) -> list[str]:
    assert call.key is not None
    blob = pair.redis.get(call.key)
    assert isinstance(blob, bytes) and pair.redis.ttl(call.key) > 0
    return blob.decode().split("|")


@pytest.mark.parametrize(("typed", "known"), [("10000006#", True), ("424242#", False)])
def test_floors_save_what_the_product_saves(pair: Pair, typed: str, known: bool) -> None:
    """The menu floor stores the step, topic and account the product stores, and the
    customer-number floor the typed number if an account has it, else the product's keyed
    pseudonym (never the digits in clear); both expire."""
    acc = account(6)
    at_menu = pair.product_at("menu", acc.phone)
    pair.send(pair.product, with_digits(at_menu, "2"))
    call = menu_call(SIDS.new(), acc.phone, "2")
    prepare(pair.redis, [call])
    pair.send(pair.floor, call.hook)
    state = pair.product_state(at_menu.params["CallSid"])
    expected = [state["node"], str(state["seq"]), state["language"], state["topic"]]
    assert floor_fields(pair, call) == [*expected, state["customer_number"]]

    phone = unknown_caller(acc)
    at_prompt = pair.product_at("customer_number", phone)
    pair.send(pair.product, with_digits(at_prompt, typed))
    call = customer_number_call(SIDS.new(), phone, typed)
    prepare(pair.redis, [call])
    pair.send(pair.floor, call.hook)
    saved = pair.product_state(at_prompt.params["CallSid"])["customer_number"]
    fields = floor_fields(pair, call)
    assert fields[:2] == ["pin", "3"] and fields[4] == saved
    digits = typed.removesuffix("#")
    assert (saved == digits) is known
    assert (digits in "|".join(fields)) is known


def test_a_replayed_floor_step_changes_nothing(pair: Pair) -> None:
    """A step's request sent again finds the call moved on: not answered as that step, not
    looked up, not saved again."""
    acc = account(7)
    call = menu_call(SIDS.new(), acc.phone)
    prepare(pair.redis, [call])
    assert pair.send(pair.floor, call.hook).outcome == "gather pin 2"
    saved = floor_fields(pair, call)
    again = pair.send(pair.floor, call.hook)
    assert again == Answer("route unavailable", 1)
    assert floor_fields(pair, call) == saved


def test_a_floor_step_loses_to_a_concurrent_one(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When another request moved the call between this one's load and save, the
    compare-and-set refuses this save and the caller is routed as unavailable."""
    phone = unknown_caller(account(8))
    call = customer_number_call(SIDS.new(), phone, "10000008#")
    prepare(pair.redis, [call])
    winner = call_state("pin", 3, "de-DE", "payments", "10000001")
    load = redis.Redis.get

    def load_then_lose(client: redis.Redis, name: str) -> object:
        loaded = load(client, name)
        pair.redis.set(name, winner)  # the concurrent request saves first
        return loaded

    monkeypatch.setattr(redis.Redis, "get", load_then_lose)
    assert pair.send(pair.floor, call.hook).outcome == "route unavailable"
    monkeypatch.undo()
    assert pair.redis.get(str(call.key)) == winner


def test_prepare_refuses_a_reused_call_sid(redis_client: redis.Redis) -> None:
    """Preparing a call whose CallSid is already in Redis fails instead of resetting it."""
    sid = SIDS.new()
    assert prepare(redis_client, [menu_call(sid, account(1).phone)]) == 1
    assert redis_client.ttl(call_key(sid)) > 0
    with pytest.raises(RuntimeError, match="CallSid reused"):
        prepare(redis_client, [customer_number_call(sid, account(1).phone, "1#")])
