"""EventStore and the board observer against a real Redis: order, trimming, TTLs, no PIN."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
import redis

from ivr.board import BoardObserver, board_payload, started_epoch
from ivr.config import RedisSettings
from ivr.exceptions import DependencyError
from ivr.flow.actions import Reason
from ivr.flow.state import CallState
from ivr.store.calls import CallStore
from ivr.store.events import EventStore, parse_id
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from tests.redis_server import free_port

TTL = 600
NOW = 1_900_000_000.0


def sid(n: int) -> str:
    return f"CA{n:032x}"


def payload(n: int, **extra: Any) -> dict[str, Any]:
    return {"call_sid": sid(n), "identified": False, **extra}


@pytest.fixture
def store(link: Link, keys: KeyLayout) -> EventStore:
    return EventStore(link, keys, TTL)


def test_snapshot_is_newest_first_with_tip(store: EventStore) -> None:
    """The snapshot lists calls by start time, newest first, each with its newest event."""
    store.publish(sid(1), payload(1, topic="a"), NOW - 30, False, NOW)
    store.publish(sid(2), payload(2), NOW - 10, False, NOW)
    last = store.publish(sid(1), payload(1, topic="b"), NOW - 30, False, NOW)
    snapshot = store.snapshot()
    assert [e.call_sid for e in snapshot.calls] == [sid(2), sid(1)]
    assert snapshot.tip == last and snapshot.calls[1].id == last
    assert snapshot.calls[1].payload()["topic"] == "b"


def test_empty_snapshot(store: EventStore) -> None:
    """Before any event the board is empty and the tip is 0-0."""
    snapshot = store.snapshot()
    assert snapshot.tip == "0-0" and snapshot.calls == ()
    assert store.bounds() == (None, None)


def test_read_after_an_id(store: EventStore) -> None:
    """read() returns exactly the events after the given id, in order."""
    ids = [store.publish(sid(n), payload(n), NOW, False, NOW) for n in range(5)]
    assert all(ids)
    events = store.read(str(ids[1]), block_ms=10)
    assert [e.id for e in events] == ids[2:]
    assert [e.call_sid for e in events] == [sid(2), sid(3), sid(4)]
    assert store.read(str(ids[-1]), block_ms=10) == []
    assert store.bounds() == (ids[0], ids[-1])


def test_read_wakes_up_for_a_new_event(store: EventStore, redis_url: str) -> None:
    """A blocked read returns as soon as something is published."""
    tip = store.publish(sid(1), payload(1), NOW, False, NOW)
    assert tip is not None
    got: list[Any] = []
    reader_link = open_link(RedisSettings(url=redis_url), socket_timeout_s=10)
    reader_store = EventStore(reader_link, KeyLayout(), TTL)
    reader = threading.Thread(target=lambda: got.extend(reader_store.read(tip, 5000)))
    reader.start()
    time.sleep(0.05)  # let it block first (if not, read() returns the event anyway)
    published = store.publish(sid(2), payload(2), NOW, False, NOW)
    reader.join(timeout=5)
    assert [e.id for e in got] == [published]
    reader_link.close()


def test_ended_call_leaves_and_stays_off(store: EventStore) -> None:
    """An ended call is off the board; a late change of it is dropped, not re-added."""
    store.publish(sid(1), payload(1), NOW, False, NOW)
    assert store.publish(sid(1), payload(1, ended=True), NOW, True, NOW) is not None
    assert store.snapshot().calls == ()
    assert store.publish(sid(1), payload(1), NOW, False, NOW) is None
    assert store.snapshot().calls == ()


def test_board_is_capped_and_old_calls_go(link: Link, redis_client: redis.Redis) -> None:
    """At most board_max calls are kept; calls older than the TTL are dropped."""
    store = EventStore(link, KeyLayout(), TTL, board_max=3)
    store.publish(sid(99), payload(99), NOW - TTL - 5, False, NOW - TTL - 5)
    for n in range(5):
        store.publish(sid(n), payload(n), NOW + n, False, NOW + n)
    snapshot = store.snapshot()
    assert [e.call_sid for e in snapshot.calls] == [sid(4), sid(3), sid(2)]
    assert redis_client.hlen(store.latest_key) == 3 and redis_client.zcard(store.index_key) == 3


def test_stream_is_trimmed(link: Link, redis_client: redis.Redis) -> None:
    """The stream does not grow without bound (approximate MAXLEN)."""
    store = EventStore(link, KeyLayout(), TTL, stream_maxlen=10)
    for n in range(400):
        store.publish(sid(n % 7), payload(n % 7), NOW, False, NOW)
    assert redis_client.xlen(store.stream_key) < 400


def test_every_key_expires(store: EventStore, redis_client: redis.Redis) -> None:
    """All four board keys carry a TTL, refreshed by each write."""
    store.publish(sid(1), payload(1), NOW, False, NOW)
    store.publish(sid(2), payload(2), NOW, True, NOW)
    keys = list(KeyLayout().board.all())
    for key in keys:
        assert 0 < redis_client.ttl(key) <= TTL, key
    found: Any = redis_client.keys("*")
    assert sorted(k.decode() for k in found) == sorted(keys)


def test_redis_down_is_a_dependency_error() -> None:
    """Every operation turns a dead Redis into DependencyError, naming no URL."""
    dead = open_link(RedisSettings(), url=f"redis://127.0.0.1:{free_port()}/0")
    store = EventStore(dead, KeyLayout(), TTL)
    for operation in (
        lambda: store.publish(sid(1), payload(1), NOW, False, NOW),
        store.snapshot,
        store.bounds,
        lambda: store.read("0-0", 10),
    ):
        with pytest.raises(DependencyError) as info:
            operation()
        assert "127.0.0.1" not in str(info.value)
    dead.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1-2", (1, 2)), ("0-0", (0, 0)), ("1", None), ("a-1", None), ("", None), (None, None)],
)
def test_parse_id(value: str | None, expected: tuple[int, int] | None) -> None:
    """Only ``<ms>-<seq>`` is a stream id."""
    assert parse_id(value) == expected


# --- the observer -----------------------------------------------------------------------

STATE = CallState(
    call_sid=sid(7), caller="+4930111111", language="de-DE", node="pin", topic="payments",
    customer_number="200001", attempts=1, started_at="2030-01-01T10:00:00Z",
)  # fmt: skip


def test_payload_is_the_screen_pop() -> None:
    """Not identified: the claimed number and nothing else of the account; then identified."""
    body = board_payload(STATE, None)
    assert body["customer_number"] is None and body["name"] is None
    assert body["claimed_customer_number"] == "200001" and body["ended"] is False
    verified = dataclasses.replace(
        STATE, identified=True, name="Anna Alpha", reason=Reason.VERIFIED, routed=True
    )
    body = board_payload(verified, "completed")
    assert body["customer_number"] == "200001" and body["name"] == "Anna Alpha"
    assert body["routed"] is True and body["call_status"] == "completed" and body["ended"]
    assert started_epoch(STATE, 0) == 1_893_492_000
    assert started_epoch(dataclasses.replace(STATE, started_at="junk"), 5.0) == 5.0


def test_observer_publishes_changes_and_status(link: Link, redis_client: redis.Redis) -> None:
    """Saved changes publish the call; a final status takes it off the board."""
    calls = CallStore(link, KeyLayout(), TTL)
    store = EventStore(link, KeyLayout(), TTL)
    observer = BoardObserver(store, clock=lambda: 1_893_492_010.0)  # 10 s in
    assert calls.create(STATE)
    observer.call_changed(STATE, None, None)
    observer.call_status(STATE.call_sid, "in-progress", STATE)
    snapshot = store.snapshot()
    assert snapshot.calls[0].payload()["call_status"] == "in-progress"
    observer.call_status(STATE.call_sid, "completed", STATE)
    observer.call_status(sid(8), "completed", None)  # unknown call: nothing to publish
    assert store.snapshot().calls == ()
    assert redis_client.xlen(store.stream_key) == 3
