"""Lockout counters against a real Redis: limits, settlement, races, TTLs (SPEC §5)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import redis

from ivr.config import LockoutSettings, RedisSettings
from ivr.exceptions import DependencyError
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import Attempt, AttemptStatus, Lockout
from ivr.store.redis_client import open_link
from tests.racing import race

BASE = LockoutSettings(
    account_max_failures=5,
    account_window_s=3600,
    account_lock_s=1800,
    caller_max_failures=1000,
    caller_window_s=3600,
    caller_lock_s=3600,
    global_alert_per_minute=3,
)
ALLOWED = AttemptStatus.ALLOWED
ACCOUNT_LOCKED = AttemptStatus.ACCOUNT_LOCKED
CALLER_LOCKED = AttemptStatus.CALLER_LOCKED


@dataclass
class Counter:
    """A lockout and its link: submissions judged as the PIN gate judges them."""

    lockout: Lockout
    link: Link

    def wrong(self, account: str, caller: str | None) -> Attempt:
        """A submission whose PIN is wrong (or that was refused), settled like the gate does."""
        attempt = self.lockout.begin(account, caller)
        self.link.send(self.lockout.settle(attempt, verified=False), "test settle")
        return attempt

    def right(self, attempt: Attempt) -> None:
        """``attempt`` (allowed) turned out right: settle it as verified."""
        self.link.send(self.lockout.settle(attempt, verified=True), "test settle")


def make(link: Link, prefix: str = "ivr", **changes: Any) -> Counter:
    return Counter(Lockout(link, KeyLayout(prefix), dataclasses.replace(BASE, **changes)), link)


def statuses(attempts: list[Attempt]) -> list[AttemptStatus]:
    return [a.status for a in attempts]


def test_exactly_max_attempts_evaluated_then_locked(link: Link) -> None:
    """An account allows exactly account_max_failures submissions; the last one locks it."""
    c = make(link)
    attempts = [c.wrong("acct-a", f"caller-{i}") for i in range(7)]
    assert statuses(attempts) == [ALLOWED] * 5 + [ACCOUNT_LOCKED] * 2
    assert [a.locked_now for a in attempts] == [False] * 4 + [True] + [False] * 2
    assert [a.allowed for a in attempts] == [True] * 5 + [False] * 2
    assert 1790 < c.lockout.account_lock_ttl("acct-a") <= 1800


def test_lock_refuses_every_later_attempt(link: Link) -> None:
    """While locked, every submission is refused before comparison, so even the right PIN."""
    c = make(link)
    for i in range(5):
        c.wrong("acct-a", f"caller-{i}")
    later = [c.wrong("acct-a", "caller-new") for _ in range(20)]
    assert set(statuses(later)) == {ACCOUNT_LOCKED}
    assert not any(a.locked_now for a in later)


def test_other_accounts_unaffected_by_a_lock(link: Link) -> None:
    """Locking one account leaves other accounts' budgets untouched."""
    c = make(link)
    for _ in range(5):
        c.wrong("acct-a", "caller")
    assert c.wrong("acct-b", "caller").allowed
    assert c.lockout.account_lock_ttl("acct-b") == 0


def test_lock_expires_after_lock_s(link: Link) -> None:
    """After account_lock_s the account gets a fresh full budget of attempts."""
    c = make(link, account_lock_s=1)
    for _ in range(5):
        c.wrong("acct-a", "caller")
    assert c.wrong("acct-a", "caller").status is ACCOUNT_LOCKED
    time.sleep(1.2)
    assert c.lockout.account_lock_ttl("acct-a") == 0
    again = [c.wrong("acct-a", "caller") for _ in range(6)]
    assert statuses(again) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_success_resets_account_failures(link: Link) -> None:
    """A right PIN resets the account's count, so failures must be consecutive to lock."""
    c = make(link)
    for _ in range(4):
        c.wrong("acct-a", "caller")
    attempt = c.lockout.begin("acct-a", "caller")
    assert attempt.allowed
    c.right(attempt)
    after = [c.wrong("acct-a", "caller") for _ in range(6)]
    assert statuses(after) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_success_clears_the_preemptive_lock(link: Link) -> None:
    """If the locking (last allowed) submission was right, the account is usable again."""
    c = make(link)
    attempts = [c.lockout.begin("acct-a", "caller") for _ in range(5)]
    assert attempts[-1].locked_now and attempts[-1].allowed
    assert c.wrong("acct-a", "other").status is ACCOUNT_LOCKED
    c.right(attempts[-1])
    assert c.lockout.account_lock_ttl("acct-a") == 0
    assert c.wrong("acct-a", "caller").allowed


def test_window_expiry_resets_count(link: Link) -> None:
    """Failures older than account_window_s no longer count towards the lock."""
    c = make(link, account_window_s=1)
    for _ in range(4):
        c.wrong("acct-a", "caller")
    time.sleep(1.2)
    after = [c.wrong("acct-a", "caller") for _ in range(6)]
    assert statuses(after) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_unlock_account(link: Link) -> None:
    """An operator unlock lifts the lock and the count; it reports whether anything existed."""
    c = make(link)
    assert c.lockout.unlock_account("acct-a") is False
    for _ in range(5):
        c.wrong("acct-a", "caller")
    assert c.lockout.unlock_account("acct-a") is True
    assert c.lockout.account_lock_ttl("acct-a") == 0
    assert statuses([c.wrong("acct-a", "caller") for _ in range(5)]) == [ALLOWED] * 5


def test_caller_spraying_across_accounts_is_blocked(link: Link, redis_client: redis.Redis) -> None:
    """One number trying many accounts is blocked after caller_max_failures, and the
    accounts it tried once blocked keep no failure of it."""
    c = make(link, caller_max_failures=3)
    attempts = [c.wrong(f"acct-{i}", "sprayer") for i in range(8)]
    assert statuses(attempts) == [ALLOWED] * 3 + [CALLER_LOCKED] * 5
    assert not any(a.locked_now for a in attempts)
    untouched = [k for k in redis_client.scan_iter("ivr:acct:*") if b"{acct-5}" in k]
    assert untouched == []
    assert c.wrong("acct-7", "someone-else").allowed


def test_blocked_caller_cannot_lock_an_account(link: Link) -> None:
    """A blocked number hammering one account never locks it for its real owner."""
    c = make(link, caller_max_failures=3)
    for _ in range(3):
        c.wrong("acct-a", "sprayer")  # 3 of the account's 5 failures
    refused = [c.wrong("acct-a", "sprayer") for _ in range(10)]
    assert set(statuses(refused)) == {CALLER_LOCKED}
    assert c.lockout.account_lock_ttl("acct-a") == 0
    owner = [c.wrong("acct-a", "owner") for _ in range(3)]
    assert statuses(owner) == [ALLOWED, ALLOWED, ACCOUNT_LOCKED]


def test_caller_block_lifted_by_success_of_the_blocking_attempt(link: Link) -> None:
    """If the submission that reached caller_max_failures was right, the number is not blocked."""
    c = make(link, caller_max_failures=3)
    for i in range(2):
        assert c.wrong(f"acct-{i}", "caller").allowed
    last = c.lockout.begin("acct-2", "caller")
    assert last.allowed
    c.right(last)
    assert c.wrong("acct-3", "caller").allowed
    assert c.wrong("acct-4", "caller").status is CALLER_LOCKED


def test_caller_block_expires_after_caller_lock_s(link: Link) -> None:
    """A blocked number may enter PINs again after caller_lock_s, with a fresh budget."""
    c = make(link, caller_max_failures=2, caller_lock_s=1)
    for i in range(3):
        c.wrong(f"acct-{i}", "caller")
    time.sleep(1.2)
    after = [c.wrong(f"acct-{i}", "caller") for i in range(3)]
    assert statuses(after) == [ALLOWED, ALLOWED, CALLER_LOCKED]


def test_withheld_callers_share_one_bucket(link: Link) -> None:
    """All withheld numbers (caller None) share one caller budget; named callers do not."""
    c = make(link, withheld_max_failures=3)
    attempts = [c.wrong(f"acct-{i}", None) for i in range(5)]
    assert statuses(attempts) == [ALLOWED] * 3 + [CALLER_LOCKED] * 2
    assert c.wrong("acct-9", "named-caller").allowed


def _race(
    redis_url: str, settings: LockoutSettings, calls: list[tuple[str, str | None]]
) -> list[Attempt]:
    """Run each (account, caller) submission at once, each thread on its own connection."""
    links = [open_link(RedisSettings(url=redis_url, socket_timeout_s=5)) for _ in calls]
    counters = [Counter(Lockout(lk, KeyLayout("ivr"), settings), lk) for lk in links]

    def connect_first(i: int) -> None:
        links[i].client.ping()  # connect before the start line so the scripts really race

    results = race([partial(counters[i].wrong, *calls[i]) for i in range(len(calls))],
                   connect_first)  # fmt: skip
    for lk in links:
        lk.close()
    return results


def test_parallel_attempts_never_exceed_account_limit(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """20 simultaneous wrong submissions on one account evaluate exactly account_max_failures."""
    calls: list[tuple[str, str | None]] = [("acct-race", f"caller-{i}") for i in range(20)]
    for _ in range(3):
        redis_client.flushdb()
        results = _race(redis_url, BASE, calls)
        assert sum(r.allowed for r in results) == BASE.account_max_failures
        assert sum(r.locked_now for r in results) == 1
        assert sum(r.status is ACCOUNT_LOCKED for r in results) == 20 - BASE.account_max_failures


def test_parallel_attempts_never_exceed_caller_limit(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """20 simultaneous withheld submissions on different accounts evaluate exactly caller max."""
    settings = dataclasses.replace(BASE, withheld_max_failures=4)
    calls: list[tuple[str, str | None]] = [(f"acct-{i}", None) for i in range(20)]
    results = _race(redis_url, settings, calls)
    assert sum(r.allowed for r in results) == 4
    assert sum(r.status is CALLER_LOCKED for r in results) == 16


def test_global_failure_counter(link: Link) -> None:
    """Every submission counts globally until it succeeds, never below zero."""
    c = make(link)
    assert c.lockout.failures_last_minute() == 0
    c.wrong("acct-a", "c1")
    c.wrong("acct-b", "c2")
    assert c.lockout.failures_last_minute() == 2
    third = c.lockout.begin("acct-c", "c3")
    assert c.lockout.failures_last_minute() == 3
    c.right(third)
    assert c.lockout.failures_last_minute() == 2
    for _ in range(5):
        c.right(third)
    assert c.lockout.failures_last_minute() == 0  # never below zero


def test_every_key_written_has_a_ttl(link: Link, redis_client: redis.Redis) -> None:
    """Every key the lockout writes expires on its own (no unbounded growth)."""
    c = make(link, caller_max_failures=3)
    for i in range(6):
        c.wrong("acct-a", "caller-x")
        c.wrong(f"acct-{i}", None)
    c.right(c.lockout.begin("acct-b", "caller-y"))
    for i in range(5):
        c.wrong("acct-c", f"caller-{i}")
    keys = list(redis_client.scan_iter("*"))
    kinds = {k.split(b":")[1] + b":" + k.rsplit(b":", 1)[1] for k in keys}
    assert {b"acct:fails", b"acct:lock", b"caller:fails", b"caller:block"} <= kinds
    assert any(k.startswith(b"ivr:failures:{global}:") for k in keys)
    for key in keys:
        assert redis_client.ttl(key) > 0, key


def test_keys_and_values_hold_no_raw_input(link: Link, redis_client: redis.Redis) -> None:
    """Redis holds only the caller's keyed-hash subjects: no PIN, phone or customer number."""
    pepper = b"test-pepper-0123456789"
    phone, customer, pin = "+4915112345678", "100042", "482913"

    def subject(value: str) -> str:
        return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()

    c = make(link)
    for _ in range(6):
        c.wrong(subject(customer), subject(phone))
    c.right(c.lockout.begin(subject(customer), subject(phone)))
    for key in redis_client.scan_iter("*"):
        stored = key + b" " + (redis_client.get(key) or b"")
        for raw in (phone, phone.lstrip("+"), customer, pin):
            assert raw.encode() not in stored
        assert key.startswith(b"ivr:")


def test_custom_prefix_namespaces_keys(link: Link, redis_client: redis.Redis) -> None:
    """With another prefix all keys live under it, so two deployments can share a Redis."""
    make(link, prefix="other").wrong("acct-a", "caller")
    keys = list(redis_client.scan_iter("*"))
    assert keys and all(k.startswith(b"other:") for k in keys)


def test_subjects_with_braces_are_rejected(link: Link, redis_client: redis.Redis) -> None:
    """A subject that would break the hash tag is refused before anything is counted."""
    c = make(link)
    with pytest.raises(ValueError):
        c.wrong("acct}{x", "caller")
    with pytest.raises(ValueError):
        c.wrong("", "caller")
    assert list(redis_client.scan_iter("*")) == []


def test_scripts_reload_after_script_flush(link: Link, redis_client: redis.Redis) -> None:
    """After Redis forgets the scripts (restart, SCRIPT FLUSH) each submission counts once."""
    c = make(link)
    c.wrong("acct-a", "caller")
    redis_client.script_flush()
    attempt = c.lockout.begin("acct-a", "caller")
    assert redis_client.get("ivr:acct:{acct-a}:fails") == b"2"
    assert redis_client.get("ivr:caller:{caller}:fails") == b"2"
    assert c.lockout.failures_last_minute() == 2
    redis_client.script_flush()
    c.right(attempt)
    assert redis_client.get("ivr:acct:{acct-a}:fails") is None
    assert redis_client.get("ivr:caller:{caller}:fails") == b"1"


def test_a_failed_count_is_not_compared_and_counts_nothing(
    link: Link, redis_client: redis.Redis
) -> None:
    """When the account's count fails (its shard down, here a broken key), the attempt is
    refused as unavailable and the caller and global counts it made are taken back."""
    c = make(link)
    redis_client.set("ivr:acct:{acct-x}:fails", "not a number")
    with pytest.raises(DependencyError, match="lockout count failed"):
        c.lockout.begin("acct-x", "caller")
    assert redis_client.get("ivr:caller:{caller}:fails") is None
    assert c.lockout.failures_last_minute() == 0
    redis_client.delete("ivr:acct:{acct-x}:fails")
    assert c.wrong("acct-x", "caller").allowed
    assert redis_client.get("ivr:caller:{caller}:fails") == b"1"


def test_the_withheld_bucket_has_its_own_limit_and_shorter_block(
    link: Link, redis_client: redis.Redis
) -> None:
    """Withheld numbers are blocked after withheld_max_failures for withheld_lock_s, not
    after the named callers' limit for their hour; the account limit still applies."""
    c = make(link, caller_max_failures=2, withheld_max_failures=4, withheld_lock_s=1)
    attempts = [c.wrong(f"acct-{i}", None) for i in range(5)]
    assert statuses(attempts) == [ALLOWED] * 4 + [CALLER_LOCKED]
    assert 0 < redis_client.ttl(KeyLayout().caller(None).lock) <= 1
    time.sleep(1.2)
    owner = [c.wrong("acct-x", None) for _ in range(6)]  # the block is over
    assert statuses(owner)[:4] == [ALLOWED] * 4
    named = [c.wrong(f"acct-n{i}", "named") for i in range(3)]
    assert statuses(named) == [ALLOWED, ALLOWED, CALLER_LOCKED]
