"""Every Redis key the service writes: its name, its hash tag and its TTL, in one place.

The ``{hash tag}`` decides the Redis Cluster slot: every script and transaction touches
the keys of one tag only, so it runs unchanged on a single Redis, behind Sentinel and on
a cluster. Subjects are keyed hashes (:meth:`ivr.store.hashing.PinHasher.subject`), never
a customer number, phone number or username. ``<p>`` is ``[redis] key_prefix``.

State Redis (``[redis] url``); the tag is the part in braces::

    <p>:call:{<CallSid>}               call state JSON          [redis] call_ttl_s, per write
    <p>:call:{<CallSid>}:status        Twilio's CallStatus      [redis] call_ttl_s, per write
    <p>:call:{<CallSid>}:claim:<seq>   a step being answered    CLAIM_TTL_S
    <p>:acct:{<account>}:fails         failures in the window   account_window_s (then lock_s)
    <p>:acct:{<account>}:lock          present while locked     [lockout] account_lock_s
    <p>:caller:{<caller>}:fails        failures of one number   caller_window_s (then lock_s)
    <p>:caller:{<caller>}:block        present while blocked    [lockout] caller_lock_s
    <p>:failures:{global}:<minute>     failures per minute      GLOBAL_BUCKET_TTL_S
    <p>:board:{board}:events           console stream           [redis] call_ttl_s, per write
    <p>:board:{board}:calls|latest|ended  its index             [redis] call_ttl_s, per write
    <p>:audit:{attempts}               audit journal stream     JOURNAL_TTL_S, per entry
    <p>:agent-login:{<username>}       failed console logins    LOGIN_WINDOW_S, per failure
    <p>:agent-session:{<username>}     an agent's open sessions [console] session_max_age_s
    <p>:agent-session:{<username>}:<id>  one open session      [console] session_max_age_s

Queue Redis (``[queue] url``; rq's own ``rq:*`` keys get their TTLs in :mod:`ivr.jobs`)::

    <p>:jobs:lock-notified:<account>   lockout SMS enqueued     [lockout] account_lock_s
    <p>:jobs:crm-delivered:<digest>    CRM event delivered      DELIVERED_TTL_S
    <p>:jobs:sms-sent:<lock id>        lockout SMS claimed      SMS_CLAIM_TTL_S
    <p>:jobs:audit-purge:<day>         purge enqueued           PURGE_MARKER_TTL_S
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A step's claim lives while its request is at work (released with the save); this only
# bounds one whose process died before saving.
CLAIM_TTL_S = 60
# Global buckets only feed the spraying alarm; a quarter of an hour of history is plenty
# for looking at an incident and keeps memory bounded.
GLOBAL_BUCKET_TTL_S = 900
# Like a queued rq job: a worker down longer than a week loses the backlog it missed.
JOURNAL_TTL_S = 7 * 86400
# Console login failures are forgotten this long after the last one.
LOGIN_WINDOW_S = 900
# A delivered CRM event is remembered this long; the call itself lives in Redis for less.
DELIVERED_TTL_S = 7 * 86400
# An SMS claim outlives every retry of its job.
SMS_CLAIM_TTL_S = 7 * 86400
# Long enough to outlive its day; the key names the day, so tomorrow needs a new one.
PURGE_MARKER_TTL_S = 2 * 86400

ANONYMOUS_CALLER = "anonymous"
# What a prefix may contain: "{" "}" would move hash tags, "*" "?" "[" would turn key
# names into patterns for the scans of audits and metrics.
PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,32}")


@dataclass(frozen=True)
class Pair:
    """The two keys of one lockout subject: its failure counter and its lock flag."""

    fails: str
    lock: str


@dataclass(frozen=True)
class BoardKeys:
    """The agent console's board: one stream and its index, all under ``{board}``."""

    events: str
    calls: str
    latest: str
    ended: str

    def all(self) -> tuple[str, str, str, str]:
        """The four keys in the order the publish script takes them."""
        return self.events, self.calls, self.latest, self.ended


class KeyLayout:
    """Names every key for one ``[redis] key_prefix`` (see the module's table)."""

    def __init__(self, prefix: str = "ivr") -> None:
        if not PREFIX.fullmatch(prefix):
            raise ValueError("key prefix must be 1-32 letters, digits, '.', '_', ':' or '-'")
        self.prefix = prefix
        board = f"{prefix}:board:{{board}}"
        self.board = BoardKeys(f"{board}:events", f"{board}:calls", f"{board}:latest",
                               f"{board}:ended")  # fmt: skip
        self.audit_journal = f"{prefix}:audit:{{attempts}}"

    # --- state Redis --------------------------------------------------------------------

    def call(self, call_sid: str) -> str:
        """A call's state (JSON)."""
        return f"{self.prefix}:call:{{{call_sid}}}"

    def call_status(self, call_sid: str) -> str:
        """Twilio's last CallStatus of a call, beside its state (same slot)."""
        return f"{self.prefix}:call:{{{call_sid}}}:status"

    def call_claim(self, call_sid: str, seq: int) -> str:
        """Taken by the first request answering step ``seq`` of a call (same slot)."""
        return f"{self.prefix}:call:{{{call_sid}}}:claim:{seq}"

    def account(self, subject: str) -> Pair:
        """Failure counter and lock of an account subject."""
        base = f"{self.prefix}:acct:{{{_checked(subject)}}}"
        return Pair(f"{base}:fails", f"{base}:lock")

    def caller(self, subject: str | None) -> Pair:
        """Failure counter and block of a caller subject (None: withheld numbers' bucket)."""
        base = f"{self.prefix}:caller:{{{_checked(subject or ANONYMOUS_CALLER)}}}"
        return Pair(f"{base}:fails", f"{base}:block")

    def global_failures(self, minute: int) -> tuple[str, str]:
        """The failure buckets of ``minute`` and of the minute before (same slot)."""
        base = f"{self.prefix}:failures:{{global}}"
        return f"{base}:{minute}", f"{base}:{minute - 1}"

    def agent_login(self, subject: str) -> str:
        """Failed console logins of a username subject."""
        return f"{self.prefix}:agent-login:{{{_checked(subject)}}}"

    def patterns(self) -> tuple[str, ...]:
        """Glob patterns that together match every key named here (and nothing else of
        ours): what a key audit or a test holds the Redis contents against."""
        p = self.prefix
        return (
            f"{p}:call:{{*}}", f"{p}:call:{{*}}:status", f"{p}:call:{{*}}:claim:*",
            f"{p}:acct:{{*}}:fails", f"{p}:acct:{{*}}:lock",
            f"{p}:caller:{{*}}:fails", f"{p}:caller:{{*}}:block",
            f"{p}:failures:{{global}}:*", *self.board.all(), self.audit_journal,
            f"{p}:agent-login:{{*}}", f"{p}:agent-session:{{*}}", f"{p}:agent-session:{{*}}:*",
            f"{p}:jobs:lock-notified:*", f"{p}:jobs:crm-delivered:*",
            f"{p}:jobs:sms-sent:*", f"{p}:jobs:audit-purge:*",
        )  # fmt: skip

    def agent_sessions(self, agent: str) -> str:
        """The ids of an agent's open console sessions (a set)."""
        return f"{self.prefix}:agent-session:{{{_checked(agent)}}}"

    def agent_session(self, agent: str, session_id: str) -> str:
        """One open console session of an agent (same slot as the agent's set)."""
        return f"{self.agent_sessions(agent)}:{session_id}"

    # --- queue Redis --------------------------------------------------------------------

    def lock_notified(self, subject: str) -> str:
        """Marks that the lockout SMS of an account's current lock was enqueued."""
        return f"{self.prefix}:jobs:lock-notified:{_checked(subject)}"

    def crm_delivered(self, digest: str) -> str:
        """Marks a CRM event as delivered."""
        return f"{self.prefix}:jobs:crm-delivered:{digest}"

    def sms_claim(self, lock_id: str) -> str:
        """Claims the sending of one lockout SMS."""
        return f"{self.prefix}:jobs:sms-sent:{lock_id}"

    def audit_purge(self, day: str) -> str:
        """Marks that the audit purge of ``day`` (YYYY-MM-DD) was enqueued."""
        return f"{self.prefix}:jobs:audit-purge:{day}"


def _checked(subject: str) -> str:
    # A brace would move the hash tag (breaking the one-slot rule); an empty subject would
    # make unrelated callers share counters.
    if not subject or "{" in subject or "}" in subject:
        raise ValueError("a key subject must be a non-empty string without braces")
    return subject
