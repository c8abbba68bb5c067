"""The call page at ``/agent/calls/<CallSid>``: the screen-pop, and unlock for supervisors.

A blueprint nested in the console's (``ivr.web.agent``), so its login, CSRF and header
rules apply here too. An unknown or malformed CallSid is a 404 that says nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from ivr.board import board_payload
from ivr.exceptions import DependencyError
from ivr.flow.state import is_unknown
from ivr.store.events import ZERO_ID
from ivr.unlock import SOURCE_CONSOLE, Unlocker
from ivr.web import agent_text
from ivr.web.agent_auth import Agent
from ivr.web.agent_console import console, error, lang, now_iso, page
from ivr.web.voice import CALL_SID

bp = Blueprint("calls", __name__, url_prefix="/calls")
log = logging.getLogger("ivr.web.agent")


def _load_pop(call_sid: str) -> dict[str, Any] | None:
    """The call's screen-pop (as on the board) plus ``account``, the number to unlock."""
    if not CALL_SID.match(call_sid):
        return None  # not even worth a Redis round trip
    calls = console().services.calls
    state, call_status = calls.screen_pop(call_sid)
    if state is None:
        return None
    pop = board_payload(state, call_status)
    # Identified or only claimed: either way the account whose PIN entry may be locked.
    pop["account"] = None if is_unknown(state.customer_number) else state.customer_number
    return pop


def _lock_minutes(number: str | None, agent: Agent | None) -> int | None:
    """Minutes the account stays locked, looked up for supervisors only."""
    if number is None or agent is None or not agent.supervisor:
        return None
    services = console().services
    try:
        seconds = services.lockout.account_lock_ttl(services.hasher.subject("account", number))
    except DependencyError:
        return None  # the screen-pop matters more than the lock's remaining time
    return -(-seconds // 60)


@bp.get("/<call_sid>")
def call(call_sid: str) -> Response:
    """The screen-pop of one call, kept current by console.js."""
    _first, tip = console().board.bounds()  # before the state: no change slips in between
    pop = _load_pop(call_sid)
    if pop is None:
        return error(404, "not_found")
    lock = _lock_minutes(pop["account"], g.agent)
    return page("agent/call.html", pop=pop, lock=lock, tip=tip or ZERO_ID, as_of=now_iso())


@bp.get("/<call_sid>/pop")
def pop(call_sid: str) -> Response:
    """Just the screen-pop panel, for console.js to swap in when the call changes."""
    found = _load_pop(call_sid)
    if found is None:
        return error(404, "not_found")
    lock = _lock_minutes(found["account"], g.agent)
    return page("agent/_pop.html", pop=found, lock=lock, as_of=now_iso())


@bp.post("/<call_sid>/unlock")
def unlock(call_sid: str) -> BaseResponse:
    """Supervisors: lift the lockout of the account this call names (audited first).

    The number comes from the stored call, never from the form, so the page cannot be
    turned into a tool for unlocking arbitrary accounts.
    """
    agent: Agent = g.agent
    if not agent.supervisor:
        log.warning("console unlock refused: agent=%s is no supervisor", agent.username)
        return error(403, "forbidden")
    found = _load_pop(call_sid)
    if found is None:
        return error(404, "not_found")
    t = agent_text.texts(lang())
    if found["account"]:
        flash(*_unlock(found["account"], agent, call_sid, t))
    else:
        flash(t["no_account"], "error")
    return redirect(url_for("agent.calls.call", call_sid=call_sid), 303)


def _unlock(number: str, agent: Agent, call_sid: str, t: Mapping[str, str]) -> tuple[str, str]:
    services = console().services
    try:
        unlocker = Unlocker(agent.username, SOURCE_CONSOLE, services.audit, services.lockout,
                            services.hasher)  # fmt: skip
        cleared = unlocker.account(number)
    except DependencyError as exc:
        log.error("console unlock agent=%s call=%s failed: %s", agent.username, call_sid, exc)
        return t["unlock_failed"], "error"
    log.info("console unlock agent=%s call=%s cleared=%s", agent.username, call_sid, cleared)
    return t["unlocked" if cleared else "nothing_to_unlock"].format(number=number), "info"
