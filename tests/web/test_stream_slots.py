"""Console streams are admitted up to a bound per process and per session."""

from __future__ import annotations

from flask.testing import FlaskClient

from ivr.web.agent import BUSY_RETRY_MS
from ivr.web.stream_slots import StreamSlots
from tests.web.test_agent import agent_client, overrides

__all__ = ["agent_client", "overrides"]  # fixtures shared with tests.web.test_agent


def test_a_session_gets_at_most_its_share() -> None:
    """A session beyond its bound is refused while another session still gets a slot."""
    slots = StreamSlots(total=4, per_session=2)
    assert slots.acquire("a") and slots.acquire("a")
    assert slots.acquire("a") is None
    assert slots.acquire("b") is not None
    assert slots.open == 3


def test_the_process_bound_holds_over_all_sessions() -> None:
    """Once the process has its bound of streams open, every session is refused."""
    slots = StreamSlots(total=3, per_session=2)
    for sid in ("a", "b", "c"):
        assert slots.acquire(sid) is not None
    assert slots.acquire("d") is None


def test_release_frees_the_slot_once() -> None:
    """Releasing twice (the stream's end and the response's close) frees one slot."""
    slots = StreamSlots(total=1, per_session=1)
    release = slots.acquire("a")
    assert release is not None
    release()
    release()
    assert slots.open == 0
    assert slots.acquire("a") is not None
    assert slots.acquire("b") is None


def test_a_stream_beyond_the_session_bound_is_answered_at_once(agent_client: FlaskClient) -> None:
    """With its two streams open, the session's third stream is a complete SSE answer
    that asks the browser to retry later, and it takes no slot."""
    opened = [agent_client.get("/agent/events", buffered=False) for _ in range(2)]
    try:
        refused = agent_client.get("/agent/events")
        assert refused.status_code == 200 and refused.mimetype == "text/event-stream"
        assert refused.get_data(as_text=True) == f"retry: {BUSY_RETRY_MS}\n\n"
        slots: StreamSlots = agent_client.application.extensions["ivr.agent"].slots
        assert slots.open == 2
    finally:
        for response in opened:
            response.close()
    assert slots.open == 0
