"""Call state per CallSid in Redis: JSON with a TTL, written by compare-and-set.

Two keys per call, both under the ``{CallSid}`` hash tag (:mod:`ivr.store.keys`): the
state, and Twilio's last CallStatus beside it. Any web node can serve any webhook of a
call: the state lives only here. A webhook passes its :class:`~ivr.deadline.Budget`:
its reads then wait as long as its deadline allows (:mod:`ivr.store.rounds`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.deadline import Budget
from ivr.flow.state import CallState
from ivr.store.keys import CLAIM_TTL_S, KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import text
from ivr.store.rounds import Command, command, run
from ivr.store.scripts import script

log = logging.getLogger(__name__)
SAVE = script("calls_save.lua")


class CallStore:
    """Load, create and compare-and-set :class:`CallState` values by CallSid."""

    def __init__(self, link: Link, keys: KeyLayout, ttl_s: int) -> None:
        self._link = link
        self._keys = keys
        self._ttl_s = ttl_s

    def load(self, call_sid: str, budget: Budget | None = None) -> CallState | None:
        """The stored state, or None if there is none or it cannot be read."""
        (blob,) = self._link.send(
            [command("GET", self._keys.call(call_sid))], "call state load", budget=budget
        )
        return self.decode(call_sid, blob)

    def load_for_step(
        self, call_sid: str, seq: int, budget: Budget | None = None
    ) -> tuple[CallState | None, bool]:
        """The stored state, and whether this request claimed step ``seq`` (False: another
        request for the same step came first: a retry, or a replay). One round trip."""
        blob, claimed = self._link.send(
            [command("GET", self._keys.call(call_sid)),
             command("SET", self._keys.call_claim(call_sid, seq), b"1", "NX", "EX",
                     CLAIM_TTL_S)],
            "call state load", budget=budget,
        )  # fmt: skip
        return self.decode(call_sid, blob), claimed is not None

    def load_with_status(self, call_sid: str) -> tuple[CallState | None, str | None]:
        """The stored state and the last CallStatus, read in one round trip."""
        blob, status = self._link.send(
            [command("GET", self._keys.call(call_sid)),
             command("GET", self._keys.call_status(call_sid))],
            "call state load",
        )  # fmt: skip
        state = self.decode(call_sid, blob)
        return state, _status_text(status) if state is not None else None

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

    def create(self, state: CallState, budget: Budget | None = None) -> bool:
        """Store a new call's state; False if the CallSid already exists (Twilio retry)."""
        key = self._keys.call(state.call_sid)
        (created,) = self._link.send(
            [command("SET", key, encode(state), "NX", "EX", self._ttl_s)], "call state create",
            budget=budget,
        )  # fmt: skip
        return created is not None

    def save(
        self,
        state: CallState,
        expected_seq: int,
        writes: Sequence[Command] = (),
        budget: Budget | None = None,
    ) -> Saved:
        """Replace the state only if the stored one has ``seq == expected_seq``.

        Atomic in one script, so two racing or replayed webhooks for the same step
        cannot both win. Not ``written`` on conflict, or if the state is missing or
        unreadable. ``writes`` (a lockout's settlement, an audit entry) go out in the
        same round, whether the save wins or not: what they record happened either way;
        so does the release of the step's claim (:meth:`load_for_step`).
        """
        sid = state.call_sid
        save = run(SAVE, (self._keys.call(sid), self._keys.call_status(sid)),
                   (encode(state), expected_seq, self._ttl_s), what="call state save")  # fmt: skip
        # The step's claim has done its work once the answer is saved (a later retry
        # finds the call moved on): it goes in the same round, on the call's slot.
        done_claim = command("DEL", self._keys.call_claim(sid, expected_seq), essential=False,
                             what="claim release")  # fmt: skip
        *done, _, (written, status) = self._link.send(
            [*writes, done_claim, save], "call state save", budget=budget
        )
        return Saved(bool(written), _status_text(status), tuple(done))

    def set_status(self, call_sid: str, status: str) -> CallState | None:
        """Remember Twilio's CallStatus (``ringing``, ``completed`` …) beside the state.

        Returns the stored state, read in the same round trip, for whoever publishes the
        status (None for an unknown call).
        """
        _, blob = self._link.send(
            [command("SET", self._keys.call_status(call_sid), status.encode(), "EX", self._ttl_s),
             command("GET", self._keys.call(call_sid))],
            "call status save",
        )  # fmt: skip
        return self.decode(call_sid, blob)


@dataclass(frozen=True)
class Saved:
    """Outcome of :meth:`CallStore.save`."""

    written: bool
    # Twilio's last CallStatus for the call (None if none was reported), read in the same
    # script, so a board event about the change needs no extra round trip for it.
    status: str | None
    # The results of the writes sent with the save, in order (None: a side channel failed).
    writes: tuple[Any, ...] = ()


def _status_text(value: Any) -> str | None:
    return text(value) if isinstance(value, (bytes, str)) else None


def encode(state: CallState) -> bytes:
    """The stored form of ``state``: compact JSON."""
    return json.dumps(state.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


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
