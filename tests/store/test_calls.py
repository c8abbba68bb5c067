"""CallStore against a real Redis: round trip, create-once, compare-and-set, TTLs."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import pytest
import redis

from ivr.config import RedisSettings
from ivr.flow.actions import Reason
from ivr.flow.state import CallState
from ivr.store.calls import CallStore
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from tests.racing import race

SID = "CA" + "0123456789abcdef" * 2
TTL = 600


def state(**changes: Any) -> CallState:
    base = CallState(call_sid=SID, caller="+4915112345678", language="de-DE", node="menu")
    return dataclasses.replace(base, **changes)


@pytest.fixture
def store(link: Link, keys: KeyLayout) -> CallStore:
    return CallStore(link, keys, ttl_s=TTL)


def test_round_trip(store: CallStore) -> None:
    """A created state loads back equal, including enums and optional fields."""
    full = state(
        seq=3,
        topic="1",
        attempts=2,
        customer_number="100042",
        identified=True,
        name="Erika Muster",
        reason=Reason.VERIFIED,
        verified_at="2024-05-01T10:00:00Z",
        started_at="2024-05-01T09:59:00Z",
    )
    assert store.create(full) is True
    assert store.load(SID) == full


def test_load_missing_is_none(store: CallStore) -> None:
    """An unknown CallSid loads as None."""
    assert store.load("CAunknown") is None


def test_create_is_set_if_absent(store: CallStore) -> None:
    """A second create for the same CallSid fails and keeps the first state."""
    assert store.create(state(node="menu")) is True
    assert store.create(state(node="pin")) is False
    loaded = store.load(SID)
    assert loaded is not None and loaded.node == "menu"


def test_save_compare_and_set(store: CallStore) -> None:
    """save writes only over the expected seq; a stale or replayed step is refused."""
    store.create(state(seq=0))
    assert store.save(state(seq=1, node="pin"), expected_seq=0).written is True
    assert store.save(state(seq=1, node="replayed"), expected_seq=0).written is False
    assert store.save(state(seq=2, node="verify"), expected_seq=1).written is True
    loaded = store.load(SID)
    assert loaded is not None and (loaded.seq, loaded.node) == (2, "verify")


def test_save_missing_state_is_refused(store: CallStore, redis_client: redis.Redis) -> None:
    """save never creates a state that does not exist (e.g. expired or never started)."""
    assert store.save(state(seq=1), expected_seq=0).written is False
    assert list(redis_client.scan_iter("*")) == []


def test_racing_saves_have_one_winner(store: CallStore, redis_url: str) -> None:
    """Of 10 simultaneous saves over the same seq, exactly one succeeds."""
    store.create(state(seq=0))
    links = [open_link(RedisSettings(url=redis_url, socket_timeout_s=5)) for _ in range(10)]
    stores = [CallStore(lk, KeyLayout(), ttl_s=TTL) for lk in links]
    wins = race(
        [partial(s.save, state(seq=1, node=f"n{i}"), expected_seq=0) for i, s in enumerate(stores)]
    )
    for lk in links:
        lk.close()
    assert sorted(w.written for w in wins) == [False] * 9 + [True]


def test_save_reads_the_status_in_the_same_script(store: CallStore) -> None:
    """A save hands back the call's last CallStatus, written or not (None before any)."""
    store.create(state())
    assert store.save(state(seq=1), expected_seq=0).status is None
    store.set_status(SID, "in-progress")
    assert store.save(state(seq=2), expected_seq=1).status == "in-progress"
    assert store.save(state(seq=3), expected_seq=1).status == "in-progress"  # refused


def test_ttls(store: CallStore, redis_client: redis.Redis) -> None:
    """State and status carry ttl_s, and every save refreshes the state's."""
    key, status_key = f"ivr:call:{{{SID}}}", f"ivr:call:{{{SID}}}:status"
    store.create(state())
    store.set_status(SID, "in-progress")
    assert TTL - 5 < redis_client.ttl(key) <= TTL
    assert TTL - 5 < redis_client.ttl(status_key) <= TTL
    redis_client.expire(key, 10)
    store.save(state(seq=1), expected_seq=0)
    assert TTL - 5 < redis_client.ttl(key) <= TTL


def test_status_round_trip(store: CallStore) -> None:
    """The last CallStatus is stored beside the state and None before any callback."""
    store.create(state())
    assert store.load_with_status(SID) == (state(), None)
    assert store.set_status(SID, "ringing") == state()
    store.set_status(SID, "completed")
    assert store.load_with_status(SID) == (state(), "completed")


def test_status_of_an_unknown_call(store: CallStore) -> None:
    """A status for a call never seen is kept, but no state comes back with it."""
    assert store.set_status(SID, "completed") is None
    assert store.load_with_status(SID) == (None, None)


@pytest.mark.parametrize(
    "blob",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"42",
        b'{"call_sid": "' + SID.encode() + b'"}',
        b'{"call_sid": "' + SID.encode() + b'", "caller": null, "language": "de-DE", '
        b'"node": "menu", "reason": "no-such-reason"}',
        b'{"call_sid": "' + SID.encode() + b'", "caller": null, "language": "de-DE", '
        b'"node": "menu", "seq": "7"}',
        b'{"call_sid": "CAother", "caller": null, "language": "de-DE", "node": "menu"}',
    ],
)
def test_garbage_blob_is_missing(store: CallStore, redis_client: redis.Redis, blob: bytes) -> None:
    """A stored blob that does not parse into a valid state loads as None and cannot be saved."""
    redis_client.set(f"ivr:call:{{{SID}}}", blob, ex=TTL)
    assert store.load(SID) is None
    assert store.save(state(seq=1), expected_seq=0).written is False


def test_keys_are_hash_tagged_and_prefixed(link: Link, redis_client: redis.Redis) -> None:
    """State and status share the {CallSid} hash tag under the configured prefix."""
    store = CallStore(link, KeyLayout("x"), ttl_s=TTL)
    store.create(state())
    store.set_status(SID, "ringing")
    keys = sorted(redis_client.scan_iter("*"))
    assert keys == [f"x:call:{{{SID}}}".encode(), f"x:call:{{{SID}}}:status".encode()]
