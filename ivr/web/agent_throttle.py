"""Limit password guessing on the console login, per username, in Redis.

Separate from the PIN lockout on purpose: agent login failures must not feed the PIN
failure alert or lock callers' accounts. Keys hold a keyed hash of the username and
expire; the window restarts with each failure, so a guesser stays locked out.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr.store.hashing import PinHasher
from ivr.store.redis_client import dependency_errors

MAX_FAILURES = 10
WINDOW_S = 900


@dataclass(frozen=True)
class LoginThrottle:
    """Counts failed logins per username; blocks after ``max_failures`` in ``window_s``."""

    client: redis.Redis
    hasher: PinHasher
    prefix: str
    max_failures: int = MAX_FAILURES
    window_s: int = WINDOW_S

    def blocked(self, username: str) -> bool:
        """True while ``username`` has too many recent failures."""
        with dependency_errors("login throttle"):
            count = self.client.get(self._key(username))
        return int(count or 0) >= self.max_failures

    def failed(self, username: str) -> None:
        """Count one failed login for ``username``."""
        key = self._key(username)
        with dependency_errors("login throttle"):
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, self.window_s)
            pipe.execute()

    def succeeded(self, username: str) -> None:
        """Forget the failures of ``username`` after a correct password."""
        with dependency_errors("login throttle"):
            self.client.delete(self._key(username))

    def _key(self, username: str) -> str:
        subject = self.hasher.subject("agent", username.strip().lower())
        return f"{self.prefix}:agent-login:{{{subject}}}"
