"""Console sessions, registered server-side so they can be ended server-side.

The session cookie (Flask's, signed) carries a random session id; Redis holds a key per
open session, under a keyed hash of the id (the id is a bearer secret) and of the
agent's username, expiring with the session. A request whose session key is gone is
logged out: logout deletes the key, so a cookie captured before it opens nothing, and a
supervisor can end every session of an agent at once. Both keys of an agent share its
hash tag (:mod:`ivr.store.keys`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.rounds import command


@dataclass(frozen=True)
class AgentSessions:
    """Open, check and end console sessions; ``ttl_s`` is the session's lifetime."""

    link: Link
    keys: KeyLayout
    hasher: PinHasher
    ttl_s: int

    def open(self, username: str) -> str:
        """Register a new session of ``username``; its id, for the cookie."""
        sid = secrets.token_urlsafe(24)
        agent, key = self._names(username, sid)
        index = self.keys.agent_sessions(agent)
        self.link.send(
            [command("SET", key, b"1", "EX", self.ttl_s),
             command("SADD", index, self._id(sid)),
             command("EXPIRE", index, self.ttl_s)],
            "console session",
        )  # fmt: skip
        return sid

    def alive(self, username: str, sid: str) -> bool:
        """True while the session has not been ended (nor expired)."""
        (found,) = self.link.send(
            [command("EXISTS", self._names(username, sid)[1])], "console session"
        )
        return bool(found)

    def close(self, username: str, sid: str) -> None:
        """End one session (logout)."""
        agent, key = self._names(username, sid)
        self.link.send(
            [command("DEL", key), command("SREM", self.keys.agent_sessions(agent),
                                          self._id(sid))],
            "console session",
        )  # fmt: skip

    def end_all(self, username: str) -> int:
        """End every session of ``username`` (a supervisor's action); how many there were."""
        agent = self._agent(username)
        index = self.keys.agent_sessions(agent)
        (ids,) = self.link.send([command("SMEMBERS", index)], "console sessions")
        keys = [self.keys.agent_session(agent, raw.decode()) for raw in ids or ()]
        self.link.send([command("DEL", index, *keys)], "console sessions")
        return len(keys)

    def _names(self, username: str, sid: str) -> tuple[str, str]:
        agent = self._agent(username)
        return agent, self.keys.agent_session(agent, self._id(sid))

    def _agent(self, username: str) -> str:
        return self.hasher.subject("agent", username.strip().lower())

    def _id(self, sid: str) -> str:
        return self.hasher.subject("session", sid)
