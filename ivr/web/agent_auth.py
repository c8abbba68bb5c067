"""Agent login, the session and CSRF tokens for the console (no Flask-WTF needed).

Agents and their password hashes come from ``[console.agents]``; the session is Flask's
signed cookie. A session names the agent, when they logged in, a fingerprint of their
password hash and a session id registered in Redis (:mod:`ivr.store.agent_sessions`),
so it ends ``session_max_age_s`` after login however often it is refreshed, and at once
when the agent is removed, their password changes, they log out (a cookie captured
before opens nothing) or a supervisor ends their sessions. Every POST carries the
session's CSRF token in a form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from ivr.config import ConsoleSettings
from ivr.exceptions import DependencyError
from ivr.store.agent_sessions import AgentSessions

CSRF_FIELD = "csrf_token"
# Longer input is never a valid login; refusing it early keeps hashing bounded.
MAX_USERNAME = 64
MAX_PASSWORD = 512

_AGENT, _LOGIN_AT, _FINGERPRINT, _CSRF, _SID = "agent", "login_at", "fp", "csrf", "sid"


@dataclass(frozen=True)
class Agent:
    """A logged-in agent; supervisors may unlock accounts."""

    username: str
    supervisor: bool


class AgentDirectory:
    """The configured agents; checks passwords in roughly constant time."""

    def __init__(self, console: ConsoleSettings) -> None:
        self._hashes = dict(console.agents)
        self._supervisors = frozenset(console.supervisors)
        self._dummy = _dummy_hash(next(iter(self._hashes.values()), None))

    @property
    def enabled(self) -> bool:
        """False when no agents are configured: the console is off."""
        return bool(self._hashes)

    def authenticate(self, username: str, password: str) -> Agent | None:
        """The agent if ``password`` is theirs; None for anything else (same cost)."""
        known = self._hashes.get(username)
        valid_input = 0 < len(username) <= MAX_USERNAME and 0 < len(password) <= MAX_PASSWORD
        candidate = password if valid_input else ""
        matches = check_password_hash(known or self._dummy, candidate)
        if known is None or not valid_input or not matches:
            return None
        return self.agent(username)

    def usernames(self) -> list[str]:
        """Every configured agent's username."""
        return list(self._hashes)

    def agent(self, username: str) -> Agent | None:
        """The configured agent called ``username``, if any."""
        if username not in self._hashes:
            return None
        return Agent(username, username in self._supervisors)

    def fingerprint(self, username: str) -> str:
        """Changes whenever the agent's password hash does (empty for unknown agents)."""
        hashed = self._hashes.get(username)
        if hashed is None:
            return ""
        return hashlib.sha256(hashed.encode("utf-8")).hexdigest()[:16]


def _dummy_hash(example: str | None) -> str:
    """A hash to check unknown usernames against, as costly as ``example``.

    Then a login answers as slowly for an unknown user as for a wrong password. Without
    agents nobody can log in, so no (slow) hash is made at all.
    """
    if example is None:
        return ""
    method = example.split("$", 1)[0]
    try:
        return generate_password_hash(secrets.token_hex(16), method=method)
    except ValueError:  # a method werkzeug cannot generate: fall back to its default
        return generate_password_hash(secrets.token_hex(16))


Session = MutableMapping[str, Any]


def current_agent(
    session: Session,
    directory: AgentDirectory,
    now: float,
    max_age_s: int,
    sessions: AgentSessions,
) -> Agent | None:
    """The agent this session belongs to, or None if it is absent, stale or ended
    (DependencyError when Redis cannot tell)."""
    username = session.get(_AGENT)
    login_at = session.get(_LOGIN_AT)
    if not isinstance(username, str) or not isinstance(login_at, int | float):
        return None
    if not 0 <= now - login_at <= max_age_s:
        return None
    expected = directory.fingerprint(username)
    given = session.get(_FINGERPRINT)
    if not expected or not isinstance(given, str):
        return None
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return None
    sid = session.get(_SID)
    if not isinstance(sid, str) or not sessions.alive(username, sid):
        return None
    return directory.agent(username)


def start_session(
    session: Session,
    agent: Agent,
    directory: AgentDirectory,
    now: float,
    sessions: AgentSessions,
) -> None:
    """Log ``agent`` in: a fresh session (and CSRF token) so nothing from before carries over."""
    language = session.get("lang")
    session.clear()
    if isinstance(language, str):
        session["lang"] = language
    session[_AGENT] = agent.username
    session[_LOGIN_AT] = int(now)
    session[_FINGERPRINT] = directory.fingerprint(agent.username)
    session[_CSRF] = secrets.token_urlsafe(32)
    session[_SID] = sessions.open(agent.username)


def session_id(session: Session) -> str:
    """The server-side id of this console session ("" without one)."""
    sid = session.get(_SID)
    return sid if isinstance(sid, str) else ""


def session_check(session: Session, sessions: AgentSessions) -> Callable[[], bool]:
    """Whether this session is still open, askable after the request (a long stream);
    a Redis failure counts as open: the stream's own reads fail then anyway."""
    username, sid = session.get(_AGENT), session.get(_SID)

    def alive() -> bool:
        if not isinstance(username, str) or not isinstance(sid, str):
            return False
        try:
            return sessions.alive(username, sid)
        except DependencyError:
            return True

    return alive


def end_session(session: Session, sessions: AgentSessions | None = None) -> None:
    """Log out: end the session server-side (``sessions`` given), forget everything."""
    username, sid = session.get(_AGENT), session.get(_SID)
    if sessions is not None and isinstance(username, str) and isinstance(sid, str):
        sessions.close(username, sid)
    session.clear()


def csrf_token(session: Session) -> str:
    """This session's CSRF token, created on first use (also before login)."""
    token = session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
    return token


def csrf_valid(session: Session, given: str | None) -> bool:
    """True if ``given`` is this session's CSRF token (compared in constant time)."""
    expected = session.get(_CSRF)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))
