"""What the agent console's views share: its dependencies and how pages are answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, current_app, render_template, session

from ivr.services import Services
from ivr.store.agent_sessions import AgentSessions
from ivr.store.events import EventStore
from ivr.store.redis_client import open_link
from ivr.web import agent_text
from ivr.web.agent_auth import AgentDirectory
from ivr.web.agent_sse import StreamLimits
from ivr.web.stream_slots import StreamSlots

# A stream's socket must outlast one XREAD BLOCK; this is the margin on top of it.
FEED_SOCKET_SLACK_S = 3.0

FeedOpener = Callable[[], tuple[EventStore, Callable[[], None]]]


@dataclass(frozen=True)
class Console:
    """The console's dependencies, created once per app by :func:`make_console`."""

    services: Services
    directory: AgentDirectory
    sessions: AgentSessions
    board: EventStore  # snapshots, on the app's short-timeout Redis client
    open_feed: FeedOpener  # a dedicated blocking connection per event stream
    limits: StreamLimits
    slots: StreamSlots  # how many streams may be open (ivr.web.stream_slots)
    clock: Callable[[], float] = time.time


def make_console(services: Services, limits: StreamLimits) -> Console:
    """The console for ``services``; opens no connection yet."""
    directory = AgentDirectory(services.settings.console)
    sessions = AgentSessions(services.link, services.keys, services.hasher,
                             services.settings.console.session_max_age_s)  # fmt: skip
    board = EventStore(services.link, services.keys, services.settings.redis.call_ttl_s)
    console = services.settings.console
    slots = StreamSlots(console.max_streams, console.max_streams_per_session)
    return Console(services, directory, sessions, board, _feed_opener(services, limits), limits,
                   slots)  # fmt: skip


def _feed_opener(services: Services, limits: StreamLimits) -> FeedOpener:
    """Each event stream gets its own connection whose reads may block for a while.

    The app's client fails fast (webhooks must); an XREAD BLOCK on it would time out.
    The connection is closed when the stream ends, however it ends.
    """
    redis_settings = services.settings.redis
    timeout = redis_settings.socket_timeout_s + limits.block_ms / 1000 + FEED_SOCKET_SLACK_S

    def open_feed() -> tuple[EventStore, Callable[[], None]]:
        link = open_link(redis_settings, socket_timeout_s=timeout)
        return EventStore(link, services.keys, redis_settings.call_ttl_s), link.close

    return open_feed


def console() -> Console:
    """The current app's console."""
    found: Console = current_app.extensions["ivr.agent"]
    return found


def lang() -> str:
    """The console language of this session (German unless switched)."""
    return agent_text.language(session.get("lang"))


def page(template: str, status: int = 200, **context: object) -> Response:
    """A rendered HTML page with ``status``."""
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def error(status: int, key: str) -> Response:
    """The error page with the text ``key`` in the session's language."""
    return page("agent/error.html", status, message=agent_text.texts(lang())[key])


def now_iso() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")
