"""Limit password guessing on the console login, per username, in Redis.

Separate from the PIN lockout on purpose: agent login failures must not feed the PIN
failure alert or lock callers' accounts. The key holds a keyed hash of the username and
expires; the window restarts with each failure, so a guesser stays locked out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.hashing import PinHasher
from ivr.store.keys import LOGIN_WINDOW_S, KeyLayout
from ivr.store.link import Link
from ivr.store.rounds import command

MAX_FAILURES = 10


@dataclass(frozen=True)
class LoginThrottle:
    """Counts failed logins per username; blocks after ``max_failures`` in ``window_s``."""

    link: Link
    hasher: PinHasher
    keys: KeyLayout
    max_failures: int = MAX_FAILURES
    window_s: int = LOGIN_WINDOW_S

    def blocked(self, username: str) -> bool:
        """True while ``username`` has too many recent failures."""
        (count,) = self.link.send([command("GET", self._key(username))], "login throttle")
        return int(count or 0) >= self.max_failures

    def failed(self, username: str) -> None:
        """Count one failed login for ``username``."""
        key = self._key(username)
        self.link.send(
            [command("INCR", key), command("EXPIRE", key, self.window_s)], "login throttle"
        )

    def succeeded(self, username: str) -> None:
        """Forget the failures of ``username`` after a correct password."""
        self.link.send([command("DEL", self._key(username))], "login throttle")

    def _key(self, username: str) -> str:
        return self.keys.agent_login(self.hasher.subject("agent", username.strip().lower()))
