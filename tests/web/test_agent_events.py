"""``/agent/events``: server-sent board events that survive reconnects and disconnects."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.config import RedisSettings
from ivr.store.events import EventStore
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from ivr.web.agent_sse import Start, StreamLimits, event_stream, resolve_start
from tests.conftest import SINGLE_OWNER
from tests.redis_server import free_port
from tests.twilio_phone import Call
from tests.web.test_agent import ANNA_PIN, agent_client, overrides

__all__ = ["agent_client", "overrides"]  # fixtures shared with tests.web.test_agent

Phone = Callable[..., Call]
STREAM = "ivr:board:{board}:events"
# Short enough that a whole stream is read in a test: it ends by itself within a second.
FAST = StreamLimits(block_ms=50, heartbeat_s=0.2, lifetime_s=0.6, retry_ms=100)


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None


@pytest.fixture
def fast(app: Flask) -> None:
    """Streams in this test end after a second instead of five minutes."""
    app.extensions["ivr.agent"] = dataclasses.replace(app.extensions["ivr.agent"], limits=FAST)


def parse(text: str) -> list[Message]:
    """The messages in SSE text; comments and retry lines are skipped."""
    found: list[Message] = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append(Message(fields["event"], fields.get("data", ""), fields.get("id")))
    return found


def chunks(response: TestResponse) -> Iterator[str]:
    for chunk in response.response:
        yield chunk.decode() if isinstance(chunk, bytes) else chunk


def read_all(client: FlaskClient, url: str, **headers: str) -> list[Message]:
    """Every message of one stream, read until the server ends it (lifetime)."""
    response = client.get(url, headers=headers, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    try:
        return parse("".join(chunks(response)))
    finally:
        response.close()


def all_ids(redis_client: redis.Redis) -> list[str]:
    entries: Any = redis_client.xrange(STREAM)
    return [entry_id.decode() for entry_id, _ in entries]


@pytest.mark.usefixtures("fast")
def test_stream_carries_screen_pops(
    agent_client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """Each call change arrives once, in order, with the stream id as SSE id; no PIN."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "987654", ANNA_PIN)
    messages = read_all(agent_client, "/agent/events?after=0-0")
    assert [m.id for m in messages] == all_ids(redis_client)
    last = json.loads(messages[-1].data)
    assert last["call_sid"] == call.call_sid and last["identified"] is True
    assert last["name"] == "Anna Alpha" and last["routed"] is True and last["started_at"]
    text = "".join(m.data for m in messages)
    assert "987654" not in text and ANNA_PIN not in text


@pytest.mark.usefixtures("fast")
def test_reconnect_loses_and_repeats_nothing(
    agent_client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """A client that drops mid-stream and reconnects with Last-Event-ID misses nothing."""
    first_call = phone(caller=SINGLE_OWNER)
    first_call.walk("1")
    response = agent_client.get("/agent/events?after=0-0", buffered=False)
    received: list[Message] = []
    text = ""
    for chunk in chunks(response):  # read just the first event, then hang up
        text += chunk
        received = parse(text)
        if received:
            break
    response.close()
    first_call.press(ANNA_PIN)  # happens while the client is away
    phone(caller="anonymous").walk("0")
    last_seen = received[-1].id
    assert last_seen is not None
    received += read_all(agent_client, "/agent/events?after=0-0", **{"Last-Event-ID": last_seen})
    ids = [m.id for m in received]
    assert ids == all_ids(redis_client) and len(set(ids)) == len(ids)


@pytest.mark.usefixtures("fast")
def test_disconnect_releases_the_connection(
    agent_client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """Closing a stream mid-way ends its generator and closes its Redis connection."""
    phone(caller=SINGLE_OWNER).walk("1")
    before = len(redis_client.client_list())
    response = agent_client.get("/agent/events?after=0-0", buffered=False)
    next(chunks(response))
    assert len(redis_client.client_list()) == before + 1
    response.close()
    deadline = time.monotonic() + 2  # Redis notices the closed socket asynchronously
    while len(redis_client.client_list()) != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(redis_client.client_list()) == before


@pytest.mark.usefixtures("fast")
@pytest.mark.parametrize("last_id", ["garbage", "99999999999999-0", "1-0"])
def test_unusable_last_event_id_resets(
    agent_client: FlaskClient, phone: Phone, redis_client: redis.Redis, last_id: str
) -> None:
    """Forged, future or trimmed ids get a reset (reload) and then only new events."""
    phone(caller=SINGLE_OWNER).walk("1")
    redis_client.xtrim(STREAM, maxlen=1, approximate=False)  # "1-0" is now trimmed away
    tip = all_ids(redis_client)[-1]
    messages = read_all(agent_client, "/agent/events", **{"Last-Event-ID": last_id})
    assert messages == [Message("reset", "{}", tip)]


@pytest.mark.usefixtures("fast")
def test_without_position_starts_at_the_tip(agent_client: FlaskClient, phone: Phone) -> None:
    """A stream opened without any id only carries what happens after it opened."""
    phone(caller=SINGLE_OWNER).walk("1")
    assert read_all(agent_client, "/agent/events") == []


@pytest.mark.usefixtures("fast")
def test_stream_for_one_call(agent_client: FlaskClient, phone: Phone) -> None:
    """``call=`` limits the stream to that call's events (the call page uses it)."""
    mine, other = phone(caller=SINGLE_OWNER), phone(caller="anonymous")
    mine.start()
    other.start()
    mine.press("0")
    messages = read_all(agent_client, f"/agent/events?after=0-0&call={mine.call_sid}")
    assert len(messages) == 2
    assert {json.loads(m.data)["call_sid"] for m in messages} == {mine.call_sid}
    assert agent_client.get("/agent/events?call=nonsense").status_code == 404


def test_redis_down_at_start(app: Flask, agent_client: FlaskClient, settings: Any) -> None:
    """With Redis unreachable the stream answers 200 with a retry hint, so browsers retry."""
    dead = settings.redis.url.rsplit(":", 1)[0] + f":{free_port()}/0"

    def open_dead() -> tuple[EventStore, Callable[[], None]]:
        dead_link = open_link(settings.redis, url=dead)
        return EventStore(dead_link, KeyLayout(), 60), dead_link.close

    console = app.extensions["ivr.agent"]
    app.extensions["ivr.agent"] = dataclasses.replace(console, open_feed=open_dead)
    response = agent_client.get("/agent/events")
    assert response.status_code == 200 and response.get_data(as_text=True) == "retry: 4000\n\n"


def test_generator_closes_on_lifetime_and_on_failure(link: Link) -> None:
    """However a stream ends (lifetime, Redis failure) it releases its connection once."""
    closed: list[str] = []
    feed = EventStore(link, KeyLayout(), 60)
    start = Start("0-0", reset=False)
    limits = dataclasses.replace(FAST, lifetime_s=0.2, heartbeat_s=10)
    assert list(event_stream(feed, start, limits, lambda: closed.append("lifetime"))) == [
        "retry: 100\n\n"
    ]
    dead_link = open_link(RedisSettings(), url=f"redis://127.0.0.1:{free_port()}/0")
    dead = EventStore(dead_link, KeyLayout(), 60)
    assert len(list(event_stream(dead, start, limits, lambda: closed.append("failure")))) == 1
    stream = event_stream(feed, start, FAST, lambda: closed.append("client gone"))
    next(stream)
    stream.close()
    assert closed == ["lifetime", "failure", "client gone"]
    dead_link.close()


def test_generator_sends_heartbeats(link: Link) -> None:
    """An idle stream sends comments, so a vanished client is noticed at the next write."""
    limits = dataclasses.replace(FAST, lifetime_s=0.5, heartbeat_s=0.1)
    began = time.monotonic()
    sent = list(
        event_stream(EventStore(link, KeyLayout(), 60), Start("0-0", False), limits, lambda: None)
    )
    assert ": heartbeat\n\n" in sent and time.monotonic() - began < 5


@pytest.mark.parametrize(
    ("requested", "first", "last", "expected"),
    [
        (None, "5-0", "9-0", Start("9-0", False)),
        (None, None, None, Start("0-0", False)),
        ("7-1", "5-0", "9-0", Start("7-1", False)),
        ("0-0", "5-0", "9-0", Start("0-0", False)),
        ("9-0", "5-0", "9-0", Start("9-0", False)),
        ("4-9", "5-0", "9-0", Start("9-0", True)),
        ("10-0", "5-0", "9-0", Start("9-0", True)),
        ("3-0", None, None, Start("0-0", True)),
        ("x-1", "5-0", "9-0", Start("9-0", True)),
        ("1" * 30 + "-0", "5-0", "9-0", Start("9-0", True)),
    ],
)
def test_resolve_start(
    requested: str | None, first: str | None, last: str | None, expected: Start
) -> None:
    """Resume after the client's id while it is still in the stream; otherwise reset."""
    assert resolve_start(requested, first, last) == expected


def test_a_stream_ends_when_its_session_is_ended(link: Link) -> None:
    """At its next heartbeat a stream whose session was ended (logout, a supervisor's
    action) stops, instead of running out its lifetime."""
    limits = dataclasses.replace(FAST, lifetime_s=30, heartbeat_s=0.1)
    closed: list[str] = []
    began = time.monotonic()
    sent = list(
        event_stream(
            EventStore(link, KeyLayout(), 60),
            Start("0-0", False),
            limits,
            lambda: closed.append("closed"),
            alive=lambda: False,
        )  # fmt: skip
    )
    assert ": heartbeat\n\n" not in sent and closed == ["closed"]
    assert time.monotonic() - began < 5
