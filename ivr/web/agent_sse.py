"""Server-sent events for the console: the board stream, resumable by ``Last-Event-ID``.

Each SSE message's ``id`` is the Redis stream id, so a browser that reconnects (it does
so by itself, sending the last id it saw) continues exactly after it: nothing lost,
nothing twice. If that id is no longer in the stream (trimmed, expired, forged) the
client gets a ``reset`` event and reloads the board instead of missing changes silently.

A stream holds one server thread (gunicorn ``gthread``) and one Redis connection, so it
is bounded: it ends after ``lifetime_s`` (the browser reconnects), reads with a short
``XREAD BLOCK`` and sends a heartbeat comment so a vanished client is noticed at the next
write, which closes the generator (GeneratorExit) and releases both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from ivr.exceptions import DependencyError
from ivr.store.events import ZERO_ID, EventStore, parse_id

log = logging.getLogger("ivr.web.agent")


@dataclass(frozen=True)
class StreamLimits:
    """How one SSE response behaves; the defaults suit production."""

    block_ms: int = 2000  # one XREAD BLOCK; the dedicated socket waits longer
    heartbeat_s: float = 15.0  # proxies drop idle connections after 30-60 s
    lifetime_s: float = 300.0  # then the browser reconnects and the thread is free again
    retry_ms: int = 2000  # how long the browser waits before reconnecting
    batch: int = 100


@dataclass(frozen=True)
class Start:
    """Where a stream begins: after ``after``; ``reset`` if the client must reload."""

    after: str
    reset: bool


def resolve_start(requested: str | None, first: str | None, last: str | None) -> Start:
    """Where to continue for a client that last saw ``requested`` (pure).

    ``first``/``last`` are the oldest and newest ids still in the stream.
    """
    tip = last or ZERO_ID
    if requested is None:
        return Start(tip, reset=False)
    wanted = parse_id(requested)
    tip_id = parse_id(tip) or (0, 0)
    if wanted is None or wanted > tip_id:
        return Start(tip, reset=True)  # garbage, forged, or the stream was lost meanwhile
    oldest = parse_id(first)
    if wanted != (0, 0) and oldest is not None and wanted < oldest:
        return Start(tip, reset=True)  # entries after it may have been trimmed away
    return Start(requested, reset=False)


def message(event: str, data: str, event_id: str | None = None) -> str:
    """One SSE message (``data`` is JSON, so it has no newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def event_stream(
    feed: EventStore,
    start: Start,
    limits: StreamLimits,
    close: Callable[[], None],
    only_call: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    alive: Callable[[], bool] = lambda: True,
) -> Generator[str, None, None]:
    """Yield SSE text until the lifetime ends, Redis fails, the client goes away or the
    session ends (``alive``, asked at every heartbeat: a logout or a supervisor's end of
    the session also ends the streams it opened).

    ``close`` releases the stream's Redis connection, whichever way it ends.
    """
    after = start.after
    began = last_write = clock()
    try:
        yield f"retry: {limits.retry_ms}\n\n"
        if start.reset:
            yield message("reset", "{}", after)
        while clock() - began < limits.lifetime_s:
            for event in feed.read(after, limits.block_ms, limits.batch):
                after = event.id
                if only_call is None or event.call_sid == only_call:
                    yield message("call", event.data, event.id)
                    last_write = clock()
            if clock() - last_write >= limits.heartbeat_s:
                if not alive():
                    log.info("board stream ended: its session was ended")
                    return
                yield ": heartbeat\n\n"
                last_write = clock()
    except DependencyError as exc:
        # The browser reconnects after retry_ms and resumes from the last id it got.
        log.warning("board stream ended: %s", exc)
    except GeneratorExit:
        log.debug("board stream: client went away")
        raise
    finally:
        close()
