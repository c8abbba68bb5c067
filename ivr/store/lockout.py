"""Race-free PIN lockout counters in Redis (SPEC §5).

*Count before compare*: :meth:`Lockout.begin` records a PIN submission as a failure
before the PIN is compared, atomically in a Lua script, and refuses it if a limit is
already reached. However many calls race, at most ``account_max_failures`` submissions per
account (and ``caller_max_failures`` per caller number) are ever compared per lock
period. :meth:`Lockout.succeeded` takes the failure back once the PIN proved right.

Keys, each with a TTL. Subjects are opaque keyed hashes computed by the caller (never a
raw PIN or phone number); the ``{hash tag}`` keeps every script's keys in one Redis
Cluster slot::

    <prefix>:acct:{<account_key>}:fails     failures in the account's window
    <prefix>:acct:{<account_key>}:lock      present while the account is locked
    <prefix>:caller:{<caller_key>}:fails    failures from one caller number
    <prefix>:caller:{<caller_key>}:block    present while that number may not enter PINs
    <prefix>:failures:{global}:<minute>     begin() minus succeeded(), per minute
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis
from redis.commands.core import Script

from ivr.config import LockoutSettings
from ivr.store.batch import Batch
from ivr.store.lockout_scripts import combined_attempt_script, combined_success_script
from ivr.store.redis_client import dependency_errors, load_script

# Withheld numbers all share this caller subject. They are the obvious vector for PIN
# spraying (a fresh "anonymous" call per guess would dodge any per-number limit), so
# together they get one caller budget. A blocked withheld caller still reaches an agent,
# just not identified, and can call again with the number shown.
ANONYMOUS_CALLER = "anonymous"
# Global buckets only feed failures_last_minute(); a quarter of an hour of history is
# plenty for looking at a spraying incident and keeps memory bounded.
GLOBAL_BUCKET_TTL_S = 900
SUBJECT_MARK = "%s"


class AttemptStatus(str, Enum):
    """Whether a PIN submission may be compared, and if not, which limit refused it."""

    ALLOWED = "allowed"
    ACCOUNT_LOCKED = "account_locked"
    CALLER_LOCKED = "caller_locked"


@dataclass(frozen=True)
class Attempt:
    """Outcome of :meth:`Lockout.begin`."""

    status: AttemptStatus
    # This submission is the one that (pre-emptively) locked the account. If its PIN then
    # turns out right the lock is lifted again and nobody is notified; if wrong, the
    # holder is notified once, for this lock.
    locked_now: bool

    @property
    def allowed(self) -> bool:
        """True if the PIN may be compared."""
        return self.status is AttemptStatus.ALLOWED


@dataclass(frozen=True)
class _Call:
    """One script invocation, to be pipelined with others."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[int, ...]


class Lockout:
    """Account, caller and global failure limits over one Redis client."""

    def __init__(
        self,
        client: redis.Redis,
        settings: LockoutSettings,
        prefix: str = "ivr",
        *,
        single_script: bool | None = None,
    ) -> None:
        _check_subject(prefix, "prefix")
        self._client = client
        self._settings = settings
        self._prefix = prefix
        self._caller_attempt = load_script(client, "lockout_caller.lua")
        self._account_attempt = load_script(client, "lockout_account.lua")
        self._caller_success = load_script(client, "lockout_caller_success.lua")
        self._account_reset = load_script(client, "lockout_account_reset.lua")
        self._global_count = load_script(client, "lockout_global.lua")
        # On a single Redis (not Cluster) all three checks fit in one script: one round
        # trip per PIN instead of two, with the same order and the same atomicity.
        self._single_node = (
            single_script
            if single_script is not None
            else not isinstance(client, redis.RedisCluster)
        )
        self._attempt = client.register_script(combined_attempt_script())
        self._success = client.register_script(combined_success_script())
        # Fixed for the settings' lifetime, sent with every PIN attempt: built once.
        self._key_templates = (
            *self._caller_keys(SUBJECT_MARK), *self._account_keys(SUBJECT_MARK),
        )  # fmt: skip
        self._attempt_args = (
            settings.caller_max_failures, settings.caller_window_s, settings.caller_lock_s,
            GLOBAL_BUCKET_TTL_S,
            settings.account_max_failures, settings.account_window_s, settings.account_lock_s,
        )  # fmt: skip

    def begin(self, account_key: str, caller_key: str | None) -> Attempt:
        """Count a PIN submission as a failure and say whether it may be compared."""
        s = self._settings
        caller = self._caller_keys(caller_key)
        account = self._account_keys(account_key)
        if self._single_node:
            return self._begin_at_once(caller, account)
        # Round trip 1: the caller limit comes first so a blocked number cannot touch
        # (and lock out) accounts; the global count rides along in the same pipeline.
        caller_blocked, _ = self._run(
            _Call(
                self._caller_attempt,
                caller,
                (s.caller_max_failures, s.caller_window_s, s.caller_lock_s),
            ),
            self._global_call(+1),
        )
        if caller_blocked:
            return attempt_of(caller_blocked, 0, 0)
        # Round trip 2, only for a number that may go on: the account's own limit.
        ((allowed, locked_now),) = self._run(
            _Call(
                self._account_attempt,
                account,
                (s.account_max_failures, s.account_window_s, s.account_lock_s),
            )
        )
        return attempt_of(0, allowed, locked_now)

    def _begin_at_once(self, caller: tuple[str, str], account: tuple[str, str]) -> Attempt:
        keys = (*caller, *self.global_keys(), *account)
        ((caller_blocked, allowed, locked_now),) = self._run(
            _Call(self._attempt, keys, self._attempt_args)
        )
        return attempt_of(caller_blocked, allowed, locked_now)

    @property
    def single_node(self) -> bool:
        """True when every check runs as one script (a single Redis, not a Cluster)."""
        return self._single_node

    def key_templates(self) -> tuple[str, str, str, str]:
        """Caller fails, caller block, account fails, account lock; ``%s`` = the subject.

        For a script that learns the subjects itself (:mod:`ivr.store.pin_step`): the
        key layout stays written once, here.
        """
        return self._key_templates

    def attempt_args(self) -> tuple[int, ...]:
        """ARGV of the combined attempt: caller limits, global TTL, account limits."""
        return self._attempt_args

    def succeeded(
        self, account_key: str, caller_key: str | None, batch: Batch | None = None
    ) -> None:
        """The allowed PIN was right: reset the account, take back the other failures.

        With ``batch`` the reset is only added to it, to go out with the call's save: the
        failure stays counted a moment longer, which can only refuse, never allow more.
        """
        account = self._account_keys(account_key)
        caller = self._caller_keys(caller_key)
        pending = batch if batch is not None else Batch()
        if self._single_node:
            keys = (*account, *caller, *self.global_keys())
            args = (self._settings.caller_max_failures,)
            pending.script(self._success, keys, args, what="lockout reset")
        else:
            pending.script(self._account_reset, account, (), what="lockout reset")
            pending.script(
                self._caller_success, caller, (self._settings.caller_max_failures,),
                what="lockout reset",
            )  # fmt: skip
            call = self._global_call(-1)
            pending.script(call.script, call.keys, call.args, what="lockout reset")
        if batch is None:
            pending.send(self._client, "lockout reset")

    def unlock_account(self, account_key: str) -> bool:
        """Lift an account's lock and forget its failures; True if there was any."""
        call = _Call(self._account_reset, self._account_keys(account_key), ())
        (removed,) = self._run(call, operation="account unlock")
        return int(removed) > 0

    def account_lock_ttl(self, account_key: str) -> int:
        """Seconds until the account's lock ends; 0 if it is not locked."""
        _, lock = self._account_keys(account_key)
        with dependency_errors("lock lookup"):
            ttl = int(self._client.ttl(lock))
        return max(ttl, 0)

    def failures_last_minute(self) -> int:
        """Estimated failures over all accounts in the last 60 s (for alerting).

        A sliding window: this minute's bucket plus the previous one weighted by how
        much of it still lies within the last 60 s. Rounded up, so a burst right before
        the minute turns is not under-reported.
        """
        now = time.time()
        current, previous = self.global_keys(now)
        with dependency_errors("failure count"):
            counts = self._client.mget([current, previous])
        this_minute, last_minute = (int(c) if c is not None else 0 for c in counts)
        overlap = 1.0 - (now % 60) / 60
        return math.ceil(this_minute + last_minute * overlap)

    def global_alert(self) -> bool:
        """True while failures over all accounts reach the per-minute alert threshold."""
        return self.failures_last_minute() >= self._settings.global_alert_per_minute

    # --- keys -------------------------------------------------------------------------

    def _account_keys(self, account_key: str) -> tuple[str, str]:
        _check_subject(account_key, "account_key")
        base = f"{self._prefix}:acct:{{{account_key}}}"
        return f"{base}:fails", f"{base}:lock"

    def _caller_keys(self, caller_key: str | None) -> tuple[str, str]:
        subject = ANONYMOUS_CALLER if caller_key is None else caller_key
        _check_subject(subject, "caller_key")
        base = f"{self._prefix}:caller:{{{subject}}}"
        return f"{base}:fails", f"{base}:block"

    def global_keys(self, now: float | None = None) -> tuple[str, str]:
        """This minute's and the previous minute's bucket of the global failure count."""
        minute = int((time.time() if now is None else now) // 60)
        base = f"{self._prefix}:failures:{{global}}"
        return f"{base}:{minute}", f"{base}:{minute - 1}"

    def _global_call(self, delta: int) -> _Call:
        keys = self.global_keys()
        return _Call(self._global_count, keys, (delta, GLOBAL_BUCKET_TTL_S))

    # --- execution --------------------------------------------------------------------

    def _run(self, *calls: _Call, operation: str = "lockout check") -> list[Any]:
        """Run scripts in one round trip, each by EVALSHA (see :class:`Batch`)."""
        batch = Batch()
        for call in calls:
            batch.script(call.script, call.keys, call.args, what="lockout script")
        return batch.send(self._client, operation)


def attempt_of(caller_blocked: int, allowed: int, locked_now: int) -> Attempt:
    """The :class:`Attempt` for the combined script's ``{caller_blocked, allowed, locked}``."""
    if caller_blocked:
        return Attempt(AttemptStatus.CALLER_LOCKED, locked_now=False)
    status = AttemptStatus.ALLOWED if allowed else AttemptStatus.ACCOUNT_LOCKED
    return Attempt(status, locked_now=bool(locked_now))


def _check_subject(subject: str, what: str) -> None:
    # A brace would move the hash tag (breaking the one-slot rule); an empty subject would
    # make unrelated callers share counters.
    if not subject or "{" in subject or "}" in subject:
        raise ValueError(f"lockout: {what} must be a non-empty string without braces")
