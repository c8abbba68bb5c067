"""Board events in Redis: a stream every console tails, plus an index of the current calls.

Four keys under the ``{board}`` hash tag (one slot, so the publish script is atomic on a
cluster too; names and TTLs in :mod:`ivr.store.keys`), each expiring ``ttl_s`` after the
last write: ``events`` (STREAM of (call, data), one entry per call change), ``calls``
(ZSET call_sid -> start time: the calls on the board now), ``latest`` (HASH call_sid ->
"<stream id> <payload>": their newest event) and ``ended`` (ZSET call_sid -> end time:
hung-up calls stay off the board).

Payloads are the screen-pop JSON built by :mod:`ivr.board` — never a PIN. A reader
renders :meth:`EventStore.snapshot` and then tails the stream from the snapshot's ``tip``
with :meth:`EventStore.read`: every change after the snapshot arrives exactly once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import dependency_errors, text
from ivr.store.rounds import run
from ivr.store.scripts import script

PUBLISH = script("events_publish.lua")

# Enough history for a console that was offline a few minutes during a busy hour; older
# entries are trimmed (approximately, which is O(1)) and such a console reloads instead.
STREAM_MAXLEN = 5000
# The board shows at most this many calls; a call centre with more in the IVR at once
# needs a different screen anyway.
BOARD_MAX = 200
ZERO_ID = "0-0"
STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


@dataclass(frozen=True)
class BoardEvent:
    """One stream entry: ``data`` is the payload JSON exactly as published."""

    id: str
    call_sid: str
    data: str

    def payload(self) -> dict[str, Any]:
        """The decoded payload (an empty dict if it is not a JSON object)."""
        try:
            value = json.loads(self.data)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Snapshot:
    """The calls on the board (newest first) as of stream id ``tip``."""

    tip: str
    calls: tuple[BoardEvent, ...]


def parse_id(value: str | None) -> tuple[int, int] | None:
    """A stream id as a comparable pair, or None if ``value`` is not one."""
    match = STREAM_ID.match(value or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


class EventStore:
    """Publish board events and read them back, over an explicit Redis client."""

    def __init__(
        self,
        link: Link,
        keys: KeyLayout,
        ttl_s: int,
        *,
        stream_maxlen: int = STREAM_MAXLEN,
        board_max: int = BOARD_MAX,
    ) -> None:
        self._link = link
        self._ttl_s = ttl_s
        self._stream_maxlen = stream_maxlen
        self._board_max = board_max
        self._keys = keys.board
        self.stream_key = keys.board.events
        self.index_key = keys.board.calls
        self.latest_key = keys.board.latest

    def publish(
        self, call_sid: str, payload: Mapping[str, Any], started: float, ended: bool, now: float
    ) -> str | None:
        """Append an event; None if it was a late change of a call that already ended."""
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        args = (
            call_sid, data, int(started), "1" if ended else "0", int(now), self._ttl_s,
            self._stream_maxlen, self._board_max,
        )  # fmt: skip
        (written,) = self._link.send(
            [run(PUBLISH, self._keys.all(), args, what="board event")], "board publish"
        )
        return text(written) if written else None

    def snapshot(self) -> Snapshot:
        """The board as of one instant: its calls, newest first, and the stream's tip."""
        with dependency_errors("board snapshot"):
            pipe = self._link.client.pipeline(transaction=True)  # one slot: atomic on a cluster
            pipe.xrevrange(self.stream_key, count=1)
            pipe.zrevrange(self.index_key, 0, self._board_max - 1)
            pipe.hgetall(self.latest_key)
            last, order, latest = pipe.execute()
        tip = text(last[0][0]) if last else ZERO_ID
        by_sid = {text(k): text(v) for k, v in latest.items()}
        calls: list[BoardEvent] = []
        for member in order:
            sid = text(member)
            entry = by_sid.get(sid)
            if entry is not None:
                event_id, _, data = entry.partition(" ")
                calls.append(BoardEvent(event_id, sid, data))
        return Snapshot(tip, tuple(calls))

    def bounds(self) -> tuple[str | None, str | None]:
        """The ids of the oldest and newest entries still in the stream (None when empty)."""
        with dependency_errors("board bounds"):
            pipe = self._link.client.pipeline(transaction=True)
            pipe.xrange(self.stream_key, count=1)
            pipe.xrevrange(self.stream_key, count=1)
            first, last = pipe.execute()
        return (text(first[0][0]) if first else None, text(last[0][0]) if last else None)

    def read(self, after: str, block_ms: int, count: int = 100) -> list[BoardEvent]:
        """Events after stream id ``after``, waiting up to ``block_ms`` for the first one.

        The client's socket timeout must exceed ``block_ms`` (see ``ivr.web.agent_sse``).
        """
        with dependency_errors("board read"):
            reply: Any = self._link.client.xread(
                {self.stream_key: after}, count=count, block=block_ms
            )
        events: list[BoardEvent] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                events.append(_event(entry_id, fields))
        return events


def _event(entry_id: Any, fields: Mapping[Any, Any]) -> BoardEvent:
    values = {text(k): text(v) for k, v in fields.items()}
    return BoardEvent(text(entry_id), values.get("call", ""), values.get("data", "{}"))
