"""Race-free PIN lockout counters in Redis (SPEC §5).

*Count before compare*: :meth:`Lockout.begin` records a PIN submission as a failure of
its caller number, of its account and of the global per-minute count before the PIN is
compared, each atomically in a Lua script over its own hash tag, and refuses it if a
limit is already reached. However many calls race, at most ``account_max_failures``
submissions per account (and ``caller_max_failures`` per caller number) are ever compared
per lock period. The three scripts go out in one durable round (:mod:`ivr.store.rounds`):
in parallel on a cluster, acknowledged by a replica where there is one, so a failover
cannot forget a counted failure. If a count fails (a shard is down), nothing is compared
and the counts that did run are taken back: an attempt never compared never counts.

What happens after the comparison is returned as commands (:meth:`Lockout.settle`) to go
out with the call's save: a right PIN resets the account and takes back the caller's and
the global failure; a submission refused by its caller's block takes back the account
count it made, because the counts ran side by side and a blocked number must not wear
accounts down. Until then the failure stays counted, which can only refuse, never allow
more. Key names and TTLs: :mod:`ivr.store.keys`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ivr.config import LockoutSettings
from ivr.deadline import Budget
from ivr.exceptions import DependencyError
from ivr.store.keys import GLOBAL_BUCKET_TTL_S, KeyLayout, Pair
from ivr.store.link import Link
from ivr.store.redis_client import dependency_errors
from ivr.store.rounds import Command, run
from ivr.store.scripts import script

log = logging.getLogger(__name__)

CALLER = script("lockout_caller.lua")
ACCOUNT = script("lockout_account.lua")
GLOBAL = script("lockout_global.lua")
ACCOUNT_RESET = script("lockout_account_reset.lua")
TAKE_BACK = script("lockout_take_back.lua")


class AttemptStatus(str, Enum):
    """Whether a PIN submission may be compared, and if not, which limit refused it."""

    ALLOWED = "allowed"
    ACCOUNT_LOCKED = "account_locked"
    CALLER_LOCKED = "caller_locked"


@dataclass(frozen=True)
class Attempt:
    """A counted PIN submission (:meth:`Lockout.begin`) and whose counters it touched."""

    status: AttemptStatus
    # This submission is the one that (pre-emptively) locked the account. If its PIN then
    # turns out right the lock is lifted again and nobody is notified; if wrong, the
    # holder is notified once, for this lock.
    locked_now: bool
    account: str
    caller: str | None
    # The account script counted it (it was not locked already): what settle() undoes
    # when the caller's block refused the submission.
    account_counted: bool = True

    @property
    def allowed(self) -> bool:
        """True if the PIN may be compared."""
        return self.status is AttemptStatus.ALLOWED


class Lockout:
    """Account, caller and global failure limits on the state Redis."""

    def __init__(
        self,
        link: Link,
        keys: KeyLayout,
        settings: LockoutSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._keys = keys
        self._settings = settings
        self._clock = clock
        s = settings
        self._caller_args = (s.caller_max_failures, s.caller_window_s, s.caller_lock_s)
        self._withheld_args = (s.withheld_max_failures, s.withheld_window_s, s.withheld_lock_s)
        self._account_args = (s.account_max_failures, s.account_window_s, s.account_lock_s)

    def begin(self, account: str, caller: str | None, budget: Budget | None = None) -> Attempt:
        """Count a PIN submission as a failure and say whether it may be compared.

        One durable round. If any count fails, nothing may be compared (DependencyError)
        and the counts that did run are taken back: an attempt never compared never
        counts (a caller retrying while a shard fails over must not block their own
        number). Counts that ran but that no replica acknowledged in time stay counted
        (ReplicaAckError): stricter, never looser. ``budget`` (a webhook's) bounds both
        rounds: a count that used it all up is not taken back (nothing is sent once it is
        spent), it stays counted, as an unacknowledged one does.
        """
        caller_keys, account_keys = self._keys.caller(caller), self._keys.account(account)
        minute = self._keys.global_failures(self._minute())
        commands = (
            # The caller first: on a single Redis the pipeline runs in this order.
            run(CALLER, (caller_keys.fails, caller_keys.lock), self._caller_limits(caller),
                what="caller count"),
            # Only the spraying alarm: its failure must not refuse a caller.
            run(GLOBAL, minute, (1, GLOBAL_BUCKET_TTL_S), essential=False, what="global count"),
            run(ACCOUNT, (account_keys.fails, account_keys.lock), self._account_args,
                what="account count"),
        )  # fmt: skip
        blocked, counted_globally, judged = self._link.send(
            commands, "lockout count", durable=True, tolerant=True, budget=budget
        )
        if isinstance(blocked, Exception) or isinstance(judged, Exception):
            self._take_back(blocked, counted_globally, judged, caller, caller_keys,
                            account_keys, minute, budget)  # fmt: skip
            failed = blocked if isinstance(blocked, Exception) else judged
            raise DependencyError(
                f"redis: lockout count failed ({type(failed).__name__})"
            ) from failed
        allowed, locked_now = judged
        counted = bool(allowed) or bool(locked_now)
        if blocked:
            return Attempt(AttemptStatus.CALLER_LOCKED, False, account, caller, counted)
        status = AttemptStatus.ALLOWED if allowed else AttemptStatus.ACCOUNT_LOCKED
        return Attempt(status, bool(locked_now), account, caller, counted)

    def _take_back(
        self,
        blocked: Any,
        counted_globally: Any,
        judged: Any,
        caller_subject: str | None,
        caller: Pair,
        account: Pair,
        minute: tuple[str, str],
        budget: Budget | None,
    ) -> None:
        """Undo the counts of an attempt that will not be compared (best effort)."""
        undo = []
        if blocked == 0:  # counted, not refused by a block
            undo.append(
                run(
                    TAKE_BACK,
                    (caller.fails, caller.lock),
                    ("1", self._settings.caller_max_failures),
                    essential=False,
                )
            )
        if isinstance(judged, list) and (judged[0] or judged[1]):
            flag = "1" if judged[1] else "0"
            undo.append(
                run(
                    TAKE_BACK,
                    (account.fails, account.lock),
                    (flag, self._settings.account_max_failures),
                    essential=False,
                )
            )
        if isinstance(counted_globally, int):
            undo.append(run(GLOBAL, minute, (-1, 0), essential=False))
        try:
            self._link.send(undo, "lockout take-back", budget=budget)
        except DependencyError as exc:
            log.warning("counts of an attempt not compared stay counted: %s", exc)

    def settle(self, attempt: Attempt, verified: bool) -> tuple[Command, ...]:
        """The writes that follow a judged attempt, to go out with the call's save."""
        account = self._keys.account(attempt.account)
        if verified:
            caller = self._keys.caller(attempt.caller)
            minute = self._keys.global_failures(self._minute())
            return (
                run(ACCOUNT_RESET, (account.fails, account.lock), what="lockout reset"),
                run(TAKE_BACK, (caller.fails, caller.lock),
                    ("1", self._caller_limits(attempt.caller)[0]), what="lockout reset"),
                run(GLOBAL, minute, (-1, 0), essential=False, what="global take-back"),
            )  # fmt: skip
        if attempt.status is AttemptStatus.CALLER_LOCKED and attempt.account_counted:
            undo = ("1" if attempt.locked_now else "0", self._settings.account_max_failures)
            return (run(TAKE_BACK, (account.fails, account.lock), undo, what="account undo"),)
        return ()

    def unlock_account(self, account: str) -> bool:
        """Lift an account's lock and forget its failures; True if there was any."""
        keys = self._keys.account(account)
        (removed,) = self._link.send(
            [run(ACCOUNT_RESET, (keys.fails, keys.lock), what="account unlock")], "account unlock"
        )
        return int(removed) > 0

    def unlock_caller(self, caller: str | None) -> bool:
        """Lift a caller subject's block and forget its failures (None: the withheld
        numbers' bucket); True if there was any."""
        keys = self._keys.caller(caller)
        (removed,) = self._link.send(
            [run(ACCOUNT_RESET, (keys.fails, keys.lock), what="caller unlock")], "caller unlock"
        )
        return int(removed) > 0

    def account_lock_ttl(self, account: str) -> int:
        """Seconds until the account's lock ends; 0 if it is not locked."""
        lock = self._keys.account(account).lock
        with dependency_errors("lock lookup"):
            ttl = int(self._link.client.ttl(lock))
        return max(ttl, 0)

    def failures_last_minute(self) -> int:
        """Estimated failures over all accounts in the last 60 s (for alerting).

        A sliding window: this minute's bucket plus the previous one weighted by how
        much of it still lies within the last 60 s. Rounded up, so a burst right before
        the minute turns is not under-reported.
        """
        now = self._clock()
        current, previous = self._keys.global_failures(int(now // 60))
        with dependency_errors("failure count"):
            # Both buckets carry {global}: one slot, one node, even on a cluster.
            counts = self._link.client.mget([current, previous])
        this_minute, last_minute = (int(c) if c is not None else 0 for c in counts)
        overlap = 1.0 - (now % 60) / 60
        return math.ceil(this_minute + last_minute * overlap)

    def _caller_limits(self, caller: str | None) -> tuple[int, int, int]:
        """Max failures, window and block of a caller subject (None: withheld numbers)."""
        return self._caller_args if caller is not None else self._withheld_args

    def _minute(self) -> int:
        return int(self._clock() // 60)
