"""The agent console at ``/agent``: login, the live board and its event stream.

Server-rendered with Jinja plus a little plain JavaScript (``ivr/static/agent``). The
board is rendered from a Redis snapshot and then kept current by server-sent events
(``/agent/events``, see :mod:`ivr.web.agent_sse`); the call page lives in
:mod:`ivr.web.agent_calls`. Without ``[console.agents]`` every page answers 404
"console disabled". Every POST needs the session's CSRF token; pages need a live
session, and the event stream and fragments answer 401 without one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, flash, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ivr.exceptions import DependencyError
from ivr.services import Services
from ivr.web import agent_calls, agent_text
from ivr.web.agent_auth import (
    CSRF_FIELD,
    csrf_token,
    csrf_valid,
    current_agent,
    end_session,
    session_check,
    session_id,
    start_session,
)
from ivr.web.agent_console import console, error, lang, make_console, page
from ivr.web.agent_sse import StreamLimits, event_stream, resolve_start
from ivr.web.agent_throttle import LoginThrottle
from ivr.web.voice import CALL_SID

bp = Blueprint("agent", __name__, url_prefix="/agent")
bp.register_blueprint(agent_calls.bp)
log = logging.getLogger("ivr.web.agent")

OPEN_ENDPOINTS = frozenset({"agent.login", "agent.language"})
# Answer 401 instead of redirecting: their callers are scripts (EventSource, fetch).
SCRIPT_ENDPOINTS = frozenset({"agent.events", "agent.calls.pop"})
# A stream refused for want of a slot is tried again by the browser this much later.
BUSY_RETRY_MS = 10_000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def init_app(app: Flask, services: Services, limits: StreamLimits | None = None) -> None:
    """Register the console and configure the session cookie it uses."""
    settings = services.settings
    created = make_console(services, limits or StreamLimits())
    app.extensions["ivr.agent"] = created
    if created.directory.enabled:
        app.secret_key = settings.console.secret_key
        app.config.update(
            SESSION_COOKIE_NAME="ivr_agent",
            SESSION_COOKIE_PATH="/agent",  # nothing outside the console sees the cookie
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=settings.server.public_base_url.startswith("https://"),
            PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.console.session_max_age_s),
        )
    app.register_blueprint(bp)


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    value = (value or "").rstrip("?")
    inside = value == "/agent" or value.startswith(("/agent/", "/agent?"))
    if inside and "//" not in value and "\\" not in value and value.isprintable():
        return value
    return url_for("agent.board")


def _next_arg() -> str:
    return _safe_next(request.values.get("next"))


@bp.context_processor
def template_globals() -> dict[str, Any]:
    """Texts ``t``, ``lang``, ``agent``, ``csrf_token()`` and formatters for templates."""
    words = agent_text.texts(lang())
    return {
        "t": words, "lang": lang(), "agent": g.get("agent"), "csrf_field": CSRF_FIELD,
        "csrf_token": lambda: csrf_token(session), "label": agent_text.label,
        "fmt_time": agent_text.format_time, "happened": agent_text.happened,
        "phase": agent_text.phase, "state": agent_text.state,
    }  # fmt: skip


@bp.before_request
def guard() -> BaseResponse | None:
    """Console off → 404; POST without a valid CSRF token → 400; no session → login."""
    current = console()
    if not current.directory.enabled:
        return page("agent/disabled.html", 404, languages=agent_text.every_language())
    if request.method == "POST" and not csrf_valid(session, request.form.get(CSRF_FIELD)):
        log.warning("console %s refused: missing or invalid CSRF token", request.path)
        if request.endpoint == "agent.login":
            return page("agent/login.html", 400, error="session_expired", next=_next_arg())
        return error(400, "session_expired")
    max_age = current.services.settings.console.session_max_age_s
    g.agent = current_agent(session, current.directory, current.clock(), max_age,
                            current.sessions)  # fmt: skip
    if g.agent is not None or request.endpoint in OPEN_ENDPOINTS:
        return None
    if "agent" in session:
        end_session(session)  # stale or revoked: forget it, which also clears the cookie
    if request.endpoint in SCRIPT_ENDPOINTS:
        return Response("login required\n", status=401, mimetype="text/plain")
    return redirect(url_for("agent.login", next=request.full_path.rstrip("?")), 303)


@bp.after_request
def security_headers(response: Response) -> Response:
    """No framing, no caching of personal data, scripts only from this origin."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(DependencyError)
def unavailable(exc: DependencyError) -> Response:
    """Redis or the database is down: a 503 page, never a stack trace."""
    log.error("console %s: %s", request.path, exc)
    return error(503, "unavailable")


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    """The login form; a POST checks the password and starts a fresh session."""
    current = console()
    if request.method == "GET":
        if g.agent is not None:
            return redirect(_next_arg(), 303)
        return page("agent/login.html", next=_next_arg())
    username = request.form.get("username", "").strip()
    services = current.services
    throttle = LoginThrottle(services.link, services.hasher, services.keys)
    if not throttle.attempt(username):  # counted before the password is checked
        log.warning("console login refused: too many failures for this username")
        return page("agent/login.html", 429, error="login_throttled", next=_next_arg())
    agent = current.directory.authenticate(username, request.form.get("password", ""))
    if agent is None:
        # Without the username: people type passwords (or PINs) into the wrong field.
        log.warning("console login failed")
        return page("agent/login.html", 401, error="login_failed", next=_next_arg())
    throttle.succeeded(username)
    start_session(session, agent, current.directory, current.clock(), current.sessions)
    session.permanent = True
    log.info("console login agent=%s supervisor=%s", agent.username, agent.supervisor)
    return redirect(_next_arg(), 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session."""
    log.info("console logout agent=%s", g.agent.username)
    end_session(session, console().sessions)
    return redirect(url_for("agent.login"), 303)


@bp.get("/agents")
def agents() -> Response:
    """Supervisors: the configured agents, each with a button to end their sessions."""
    if not g.agent.supervisor:
        return error(403, "forbidden")
    return page("agent/agents.html", names=sorted(console().directory.usernames()))


@bp.post("/agents/<username>/end-sessions")
def end_sessions(username: str) -> BaseResponse:
    """Supervisors: end every open session of ``username`` at once (audited in the log)."""
    current = console()
    if not g.agent.supervisor:
        log.warning("console end-sessions refused: agent=%s is no supervisor", g.agent.username)
        return error(403, "forbidden")
    if current.directory.agent(username) is None:
        return error(404, "not_found")
    ended = current.sessions.end_all(username)
    log.info("console sessions ended agent=%s by=%s count=%d", username, g.agent.username, ended)
    flash(agent_text.texts(lang())["sessions_ended"].format(count=ended, name=username), "info")
    return redirect(url_for("agent.agents"), 303)


@bp.post("/lang")
def language() -> BaseResponse:
    """Switch the console between German and English."""
    session["lang"] = agent_text.language(request.form.get("lang"))
    return redirect(_next_arg(), 303)


@bp.get("/")
@bp.get("")  # registered first, so url_for() gives /agent
def board() -> Response:
    """The live board: the current calls, newest first; console.js applies the events."""
    snapshot = console().board.snapshot()
    rows = [event.payload() | {"event_id": event.id} for event in snapshot.calls]
    texts = agent_text.script_texts(lang())
    return page("agent/board.html", rows=rows, tip=snapshot.tip, script_texts=texts)


@bp.get("/events")
def events() -> Response:
    """Server-sent events from the board stream, resumed after ``Last-Event-ID``.

    ``after`` is where the page's snapshot ended (the browser's first connection);
    ``call`` limits the stream to one call (the call page).
    """
    current = console()
    only_call = request.args.get("call") or None
    if only_call is not None and not CALL_SID.match(only_call):
        return Response("unknown call\n", status=404, mimetype="text/plain")
    requested = request.headers.get("Last-Event-ID") or request.args.get("after") or None
    release = current.slots.acquire(session_id(session))
    if release is None:
        # Answered at once, holding no thread: the threads left are the webhooks'.
        log.info("board stream refused: %d streams open in this process", current.slots.open)
        return _sse(iter((f"retry: {BUSY_RETRY_MS}\n\n",)))
    feed, close_feed = current.open_feed()

    def close() -> None:
        close_feed()
        release()

    try:
        first, last = feed.bounds()
    except DependencyError as exc:
        close()
        log.warning("board stream not started: %s", exc)
        # 200, not 503: on an error status EventSource would give up instead of retrying.
        return _sse(iter((f"retry: {current.limits.retry_ms * 2}\n\n",)))
    start = resolve_start(requested, first, last)
    alive = session_check(session, current.sessions)
    response = _sse(event_stream(feed, start, current.limits, close, only_call, alive=alive))
    # A generator closed before its first step never runs its finally: close here too.
    response.call_on_close(close)
    return response


def _sse(body: Iterator[str]) -> Response:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(body, mimetype="text/event-stream", headers=headers)
