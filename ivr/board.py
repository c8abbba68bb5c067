"""The call observer that feeds the agent console's live board through Redis.

Every saved call change and every status callback becomes one event in the board
stream (:mod:`ivr.store.events`); consoles tail it over server-sent events. The payload is
the screen-pop (account details only when identified, never a PIN) plus where the call
is: ``routed`` and Twilio's ``call_status`` (as the API answers, :func:`call_payload`),
``started_at`` and ``ended``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ivr.config import Settings
from ivr.exceptions import DependencyError
from ivr.flow.state import CallState
from ivr.jobs import TERMINAL_STATUSES
from ivr.observers import PinAttempt
from ivr.store.events import EventStore
from ivr.store.keys import KeyLayout
from ivr.store.link import Link


def call_payload(state: CallState, call_status: str | None) -> dict[str, object]:
    """The screen-pop JSON (SPEC §4) plus ``routed`` and ``call_status``: the API's body."""
    body = state.screen_pop().to_json()
    body["routed"] = state.routed
    body["call_status"] = call_status
    return body


def board_payload(state: CallState, call_status: str | None) -> dict[str, object]:
    """The event payload: :func:`call_payload` plus when the call started and if it ended."""
    body = call_payload(state, call_status)
    body["started_at"] = state.started_at
    body["ended"] = call_status in TERMINAL_STATUSES  # a final status takes it off the board
    return body


def started_epoch(state: CallState, fallback: float) -> float:
    """When the call started, as a Unix time (``fallback`` if unknown or unreadable)."""
    try:
        return datetime.fromisoformat(state.started_at or "").timestamp()
    except ValueError:
        return fallback


@dataclass(frozen=True)
class BoardObserver:
    """Publishes each call change to the board stream (one script per change)."""

    events: EventStore
    clock: Callable[[], float] = time.time

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        """A step was saved: publish the call as it is now (status as the save read it)."""
        self._publish(state, status)

    def pin_attempted(self, attempt: PinAttempt) -> None:
        """Nothing to do: the saved state change carries the outcome."""

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        """Nothing to show: a call handed over unsaved has no new state."""

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        """Twilio reported a status: publish it (a final one takes the call off the board)."""
        if state is not None:  # an unknown call has nothing to show
            self._publish(state, status)

    def _publish(self, state: CallState, status: str | None) -> None:
        now = self.clock()
        payload = board_payload(state, status)
        started = started_epoch(state, now)
        self.events.publish(state.call_sid, payload, started, bool(payload["ended"]), now)


def board_observer(settings: Settings, link: Link, keys: KeyLayout) -> BoardObserver:
    """The board observer on the state Redis (TTL from ``settings``)."""
    return BoardObserver(EventStore(link, keys, settings.redis.call_ttl_s))
