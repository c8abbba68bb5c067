"""Call state per CallSid in Redis: JSON with a TTL, written by compare-and-set.

Keys (the ``{CallSid}`` hash tag keeps both in one Redis Cluster slot)::

    <prefix>:call:{<CallSid>}           CallState as JSON (never a PIN: CallState has none)
    <prefix>:call:{<CallSid>}:status    Twilio's CallStatus from the status callback
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from ivr.flow.state import CallState
from ivr.store.batch import Batch
from ivr.store.redis_client import dependency_errors, load_script, round_trip, text

log = logging.getLogger(__name__)
# Extra fields stored beside a state's own (CallState.from_dict ignores them).
Sidecar = Mapping[str, str]


class CallStore:
    """Load, create and compare-and-set :class:`CallState` values by CallSid."""

    def __init__(self, client: redis.Redis, ttl_s: int, prefix: str = "ivr") -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._save = load_script(client, "calls_save.lua")

    def load(self, call_sid: str) -> CallState | None:
        """The stored state, or None if there is none or it cannot be read."""
        with dependency_errors("call state load"):
            (blob,) = round_trip(self._client, [("GET", self.key(call_sid))])
            if isinstance(blob, Exception):
                raise blob
        return self.decode(call_sid, blob)

    def load_with_status(self, call_sid: str) -> tuple[CallState | None, str | None]:
        """The stored state and the last CallStatus, read in one round trip."""
        with dependency_errors("call state load"):
            replies = round_trip(
                self._client, [("GET", self.key(call_sid)), ("GET", self._status_key(call_sid))]
            )
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        state = self.decode(call_sid, replies[0])
        return state, _status_text(replies[1]) if state is not None else None

    def decode(self, call_sid: str, blob: Any) -> CallState | None:
        """The state in ``blob`` as stored for ``call_sid``; None if absent or unreadable."""
        if blob is None:
            return None
        state = _decode(blob)
        if state is None or state.call_sid != call_sid:
            # A corrupt blob must not crash a webhook: the caller is then treated like an
            # unknown call (routed to an agent), and the key expires on its own.
            log.warning("stored call state for %s is unreadable; treating it as missing", call_sid)
            return None
        return state

    def create(self, state: CallState, sidecar: Sidecar | None = None) -> bool:
        """Store a new call's state; False if the CallSid already exists (Twilio retry).

        ``sidecar`` fields are stored beside the state's (see :mod:`ivr.store.pin_step`).
        """
        with dependency_errors("call state create"):
            created = self._client.set(
                self.key(state.call_sid), _encode(state, sidecar), nx=True, ex=self._ttl_s
            )
        return bool(created)

    def save(
        self,
        state: CallState,
        expected_seq: int,
        batch: Batch | None = None,
        sidecar: Sidecar | None = None,
    ) -> Saved:
        """Replace the state only if the stored one has ``seq == expected_seq``.

        Atomic in one script, so two racing or replayed webhooks for the same step
        cannot both win. Not ``written`` on conflict, or if the state is missing or
        unreadable. The writes in ``batch`` go out first, in the same round trip.
        """
        pending = batch if batch is not None else Batch()
        args = (_encode(state, sidecar), expected_seq, self._ttl_s)
        keys = [self.key(state.call_sid), self._status_key(state.call_sid)]
        pending.script(self._save, keys, args, what="call state save")
        written, status = pending.send(self._client, "call state save")[-1]
        return Saved(bool(written), _status_text(status))

    def expire(self, call_sid: str, ttl_s: int) -> None:
        """Let the call's state and status expire in ``ttl_s`` seconds (e.g. once it ended)."""
        with dependency_errors("call state expire"):
            pipe = self._client.pipeline(transaction=True)  # one slot: safe on a cluster
            pipe.expire(self.key(call_sid), ttl_s)
            pipe.expire(self._status_key(call_sid), ttl_s)
            pipe.execute()

    def set_status(self, call_sid: str, status: str) -> CallState | None:
        """Remember Twilio's CallStatus (``ringing``, ``completed`` …) beside the state.

        Returns the stored state, read in the same round trip, for whoever publishes the
        status (None for an unknown call).
        """
        with dependency_errors("call status save"):
            replies = round_trip(
                self._client,
                [
                    ("SET", self._status_key(call_sid), status.encode(), "EX", self._ttl_s),
                    ("GET", self.key(call_sid)),
                ],
            )
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return self.decode(call_sid, replies[1])

    def status(self, call_sid: str) -> str | None:
        """The last CallStatus reported for the call, if any."""
        with dependency_errors("call status load"):
            value = self._client.get(self._status_key(call_sid))
        return _status_text(value)

    def key(self, call_sid: str) -> str:
        """The Redis key of the call's state."""
        return f"{self._prefix}:call:{{{call_sid}}}"

    def _status_key(self, call_sid: str) -> str:
        return f"{self.key(call_sid)}:status"


@dataclass(frozen=True)
class Saved:
    """Outcome of :meth:`CallStore.save`."""

    written: bool
    # Twilio's last CallStatus for the call (None if none was reported), read in the same
    # script, so a board event about the change needs no extra round trip for it.
    status: str | None


def _status_text(value: Any) -> str | None:
    return text(value) if isinstance(value, (bytes, str)) else None


def _encode(state: CallState, sidecar: Sidecar | None = None) -> bytes:
    data = state.to_dict() if sidecar is None else {**state.to_dict(), **sidecar}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _decode(blob: Any) -> CallState | None:
    try:
        data = json.loads(blob)
        if not isinstance(data, dict):
            return None
        state = CallState.from_dict(data)
    except (ValueError, TypeError):  # bad JSON or UTF-8, missing fields, unknown reason
        return None
    return state if _well_formed(state) else None


def _well_formed(state: CallState) -> bool:
    # from_dict does not check types; the fields the engine branches on must be right.
    return (
        isinstance(state.call_sid, str)
        and isinstance(state.node, str)
        and isinstance(state.language, str)
        and isinstance(state.seq, int)
        and not isinstance(state.seq, bool)
    )
