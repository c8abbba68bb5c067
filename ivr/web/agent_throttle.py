"""Limit password guessing on the console login, per username, in Redis.

*Count before check*, like the PIN lockout: every login attempt is counted first
(``INCR`` then ``EXPIRE``, one round), and only an attempt within the limit has its
password checked, so parallel guesses cannot slip past the limit between a check and a
count. A right password forgets the count. The window restarts with every attempt, so a
guesser stays locked out. Separate from the PIN lockout on purpose: agent login failures
must not feed the PIN failure alert or lock callers' accounts. The key holds a keyed
hash of the username and expires.
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
    """Counts login attempts per username; refuses beyond ``max_failures`` in ``window_s``."""

    link: Link
    hasher: PinHasher
    keys: KeyLayout
    max_failures: int = MAX_FAILURES
    window_s: int = LOGIN_WINDOW_S

    def attempt(self, username: str) -> bool:
        """Count one attempt for ``username``; True if its password may be checked."""
        key = self._key(username)
        count, _ = self.link.send(
            [command("INCR", key), command("EXPIRE", key, self.window_s)], "login throttle"
        )
        return int(count) <= self.max_failures

    def succeeded(self, username: str) -> None:
        """Forget the attempts of ``username`` after a correct password."""
        self.link.send([command("DEL", self._key(username))], "login throttle")

    def _key(self, username: str) -> str:
        return self.keys.agent_login(self.hasher.subject("agent", username.strip().lower()))
