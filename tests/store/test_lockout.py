"""Lockout counters against a real Redis: limits, resets, races, TTLs (SPEC §5)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from functools import partial
from typing import Any

import pytest
import redis

from ivr.config import LockoutSettings, RedisSettings
from ivr.store import lockout as lockout_module
from ivr.store.lockout import Attempt, AttemptStatus, Lockout
from ivr.store.redis_client import connect
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


@pytest.fixture(autouse=True, params=[True, False], ids=["one-script", "per-slot"])
def lockout_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test against both ways of counting: one script, or one per Cluster slot."""
    single = bool(request.param)

    class Forced(lockout_module.Lockout):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, single_script=single, **kwargs)

    monkeypatch.setitem(globals(), "Lockout", Forced)


def make(client: redis.Redis, **changes: Any) -> Lockout:
    return Lockout(client, dataclasses.replace(BASE, **changes))


def statuses(attempts: list[Attempt]) -> list[AttemptStatus]:
    return [a.status for a in attempts]


ALLOWED = AttemptStatus.ALLOWED
ACCOUNT_LOCKED = AttemptStatus.ACCOUNT_LOCKED
CALLER_LOCKED = AttemptStatus.CALLER_LOCKED


def test_exactly_max_attempts_evaluated_then_locked(redis_client: redis.Redis) -> None:
    """An account allows exactly account_max_failures submissions; the last one locks it."""
    lockout = make(redis_client)
    attempts = [lockout.begin("acct-a", f"caller-{i}") for i in range(7)]
    assert statuses(attempts) == [ALLOWED] * 5 + [ACCOUNT_LOCKED] * 2
    assert [a.locked_now for a in attempts] == [False] * 4 + [True] + [False] * 2
    assert [a.allowed for a in attempts] == [True] * 5 + [False] * 2
    assert 1790 < lockout.account_lock_ttl("acct-a") <= 1800


def test_lock_refuses_every_later_attempt(redis_client: redis.Redis) -> None:
    """While locked, every submission is refused before comparison, so even the right PIN."""
    lockout = make(redis_client)
    for i in range(5):
        lockout.begin("acct-a", f"caller-{i}")
    later = [lockout.begin("acct-a", "caller-new") for _ in range(20)]
    assert set(statuses(later)) == {ACCOUNT_LOCKED}
    assert not any(a.locked_now for a in later)


def test_other_accounts_unaffected_by_a_lock(redis_client: redis.Redis) -> None:
    """Locking one account leaves other accounts' budgets untouched."""
    lockout = make(redis_client)
    for _ in range(5):
        lockout.begin("acct-a", "caller")
    assert lockout.begin("acct-b", "caller").allowed
    assert lockout.account_lock_ttl("acct-b") == 0


def test_lock_expires_after_lock_s(redis_client: redis.Redis) -> None:
    """After account_lock_s the account gets a fresh full budget of attempts."""
    lockout = make(redis_client, account_lock_s=1)
    for _ in range(5):
        lockout.begin("acct-a", "caller")
    assert lockout.begin("acct-a", "caller").status is ACCOUNT_LOCKED
    time.sleep(1.2)
    assert lockout.account_lock_ttl("acct-a") == 0
    again = [lockout.begin("acct-a", "caller") for _ in range(6)]
    assert statuses(again) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_success_resets_account_failures(redis_client: redis.Redis) -> None:
    """A right PIN resets the account's count, so failures must be consecutive to lock."""
    lockout = make(redis_client)
    for _ in range(4):
        lockout.begin("acct-a", "caller")
    assert lockout.begin("acct-a", "caller").allowed
    lockout.succeeded("acct-a", "caller")
    after = [lockout.begin("acct-a", "caller") for _ in range(6)]
    assert statuses(after) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_success_clears_the_preemptive_lock(redis_client: redis.Redis) -> None:
    """If the locking (last allowed) submission was right, the account is usable again."""
    lockout = make(redis_client)
    attempts = [lockout.begin("acct-a", "caller") for _ in range(5)]
    assert attempts[-1].locked_now and attempts[-1].allowed
    assert lockout.begin("acct-a", "other").status is ACCOUNT_LOCKED
    lockout.succeeded("acct-a", "caller")
    assert lockout.account_lock_ttl("acct-a") == 0
    assert lockout.begin("acct-a", "caller").allowed


def test_window_expiry_resets_count(redis_client: redis.Redis) -> None:
    """Failures older than account_window_s no longer count towards the lock."""
    lockout = make(redis_client, account_window_s=1)
    for _ in range(4):
        lockout.begin("acct-a", "caller")
    time.sleep(1.2)
    after = [lockout.begin("acct-a", "caller") for _ in range(6)]
    assert statuses(after) == [ALLOWED] * 5 + [ACCOUNT_LOCKED]


def test_unlock_account(redis_client: redis.Redis) -> None:
    """An operator unlock lifts the lock and the count; it reports whether anything existed."""
    lockout = make(redis_client)
    assert lockout.unlock_account("acct-a") is False
    for _ in range(5):
        lockout.begin("acct-a", "caller")
    assert lockout.unlock_account("acct-a") is True
    assert lockout.account_lock_ttl("acct-a") == 0
    assert statuses([lockout.begin("acct-a", "caller") for _ in range(5)]) == [ALLOWED] * 5


def test_caller_spraying_across_accounts_is_blocked(redis_client: redis.Redis) -> None:
    """One number trying many accounts is blocked after caller_max_failures, accounts untouched."""
    lockout = make(redis_client, caller_max_failures=3)
    attempts = [lockout.begin(f"acct-{i}", "sprayer") for i in range(8)]
    assert statuses(attempts) == [ALLOWED] * 3 + [CALLER_LOCKED] * 5
    assert not any(a.locked_now for a in attempts)
    untouched = [k for k in redis_client.scan_iter("ivr:acct:*") if b"{acct-5}" in k]
    assert untouched == []
    assert lockout.begin("acct-7", "someone-else").allowed


def test_caller_block_lifted_by_success_of_the_blocking_attempt(redis_client: redis.Redis) -> None:
    """If the submission that reached caller_max_failures was right, the number is not blocked."""
    lockout = make(redis_client, caller_max_failures=3)
    for i in range(3):
        assert lockout.begin(f"acct-{i}", "caller").allowed
    lockout.succeeded("acct-2", "caller")
    assert lockout.begin("acct-3", "caller").allowed
    assert lockout.begin("acct-4", "caller").status is CALLER_LOCKED


def test_caller_block_expires_after_caller_lock_s(redis_client: redis.Redis) -> None:
    """A blocked number may enter PINs again after caller_lock_s, with a fresh budget."""
    lockout = make(redis_client, caller_max_failures=2, caller_lock_s=1)
    for i in range(3):
        lockout.begin(f"acct-{i}", "caller")
    time.sleep(1.2)
    after = [lockout.begin(f"acct-{i}", "caller") for i in range(3)]
    assert statuses(after) == [ALLOWED, ALLOWED, CALLER_LOCKED]


def test_withheld_callers_share_one_bucket(redis_client: redis.Redis) -> None:
    """All withheld numbers (caller_key None) share one caller budget; named callers do not."""
    lockout = make(redis_client, caller_max_failures=3)
    attempts = [lockout.begin(f"acct-{i}", None) for i in range(5)]
    assert statuses(attempts) == [ALLOWED] * 3 + [CALLER_LOCKED] * 2
    assert lockout.begin("acct-9", "named-caller").allowed


def _race(
    redis_url: str, settings: LockoutSettings, calls: list[tuple[str, str | None]]
) -> list[Attempt]:
    """Run begin() for each (account, caller) at once, each thread on its own connection."""
    clients = [connect(RedisSettings(socket_timeout_s=5), redis_url) for _ in calls]
    lockouts = [Lockout(client, settings) for client in clients]

    def connect_first(i: int) -> None:
        clients[i].ping()  # connect before the start line so the scripts really race

    results = race(
        [partial(lockouts[i].begin, *calls[i]) for i in range(len(calls))], connect_first
    )
    for c in clients:
        c.close()
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
    settings = dataclasses.replace(BASE, caller_max_failures=4)
    calls: list[tuple[str, str | None]] = [(f"acct-{i}", None) for i in range(20)]
    results = _race(redis_url, settings, calls)
    assert sum(r.allowed for r in results) == 4
    assert sum(r.status is CALLER_LOCKED for r in results) == 16


def test_global_failure_counter(redis_client: redis.Redis) -> None:
    """Every submission counts globally until it succeeds; the alert fires at the threshold."""
    lockout = make(redis_client)
    assert lockout.failures_last_minute() == 0
    lockout.begin("acct-a", "c1")
    lockout.begin("acct-b", "c2")
    assert lockout.failures_last_minute() == 2
    assert lockout.global_alert() is False
    lockout.begin("acct-c", "c3")
    assert lockout.failures_last_minute() == 3
    assert lockout.global_alert() is True
    lockout.succeeded("acct-c", "c3")
    assert lockout.failures_last_minute() == 2
    for _ in range(5):
        lockout.succeeded("acct-c", "c3")
    assert lockout.failures_last_minute() == 0  # never below zero


def test_every_key_written_has_a_ttl(redis_client: redis.Redis) -> None:
    """Every key the lockout writes expires on its own (no unbounded growth)."""
    lockout = make(redis_client, caller_max_failures=3)
    for i in range(6):
        lockout.begin("acct-a", "caller-x")
        lockout.begin(f"acct-{i}", None)
    lockout.begin("acct-b", "caller-y")
    lockout.succeeded("acct-b", "caller-y")
    for i in range(5):
        lockout.begin("acct-c", f"caller-{i}")
    keys = list(redis_client.scan_iter("*"))
    kinds = {k.split(b":")[1] + b":" + k.rsplit(b":", 1)[1] for k in keys}
    assert {b"acct:fails", b"acct:lock", b"caller:fails", b"caller:block"} <= kinds
    assert any(k.startswith(b"ivr:failures:{global}:") for k in keys)
    for key in keys:
        assert redis_client.ttl(key) > 0, key


def test_keys_and_values_hold_no_raw_input(redis_client: redis.Redis) -> None:
    """Redis holds only the caller's keyed-hash subjects: no PIN, phone or customer number."""
    pepper = b"test-pepper-0123456789"
    phone, customer, pin = "+4915112345678", "100042", "482913"

    def subject(value: str) -> str:
        return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()

    lockout = make(redis_client)
    for _ in range(6):
        lockout.begin(subject(customer), subject(phone))
    lockout.succeeded(subject(customer), subject(phone))
    for key in redis_client.scan_iter("*"):
        stored = key + b" " + (redis_client.get(key) or b"")
        for raw in (phone, phone.lstrip("+"), customer, pin):
            assert raw.encode() not in stored
        assert key.startswith(b"ivr:")


def test_custom_prefix_namespaces_keys(redis_client: redis.Redis) -> None:
    """With another prefix all keys live under it, so two deployments can share a Redis."""
    lockout = Lockout(redis_client, BASE, prefix="other")
    lockout.begin("acct-a", "caller")
    keys = list(redis_client.scan_iter("*"))
    assert keys and all(k.startswith(b"other:") for k in keys)


def test_subjects_with_braces_are_rejected(redis_client: redis.Redis) -> None:
    """A subject that would break the hash tag is refused before anything is counted."""
    lockout = make(redis_client)
    with pytest.raises(ValueError):
        lockout.begin("acct}{x", "caller")
    with pytest.raises(ValueError):
        lockout.begin("", "caller")
    assert list(redis_client.scan_iter("*")) == []


def test_scripts_reload_after_script_flush(redis_client: redis.Redis) -> None:
    """After Redis forgets the scripts (restart, SCRIPT FLUSH) each submission counts once."""
    lockout = make(redis_client)
    lockout.begin("acct-a", "caller")
    redis_client.script_flush()
    lockout.begin("acct-a", "caller")
    assert redis_client.get("ivr:acct:{acct-a}:fails") == b"2"
    assert redis_client.get("ivr:caller:{caller}:fails") == b"2"
    assert lockout.failures_last_minute() == 2
    redis_client.script_flush()
    lockout.succeeded("acct-a", "caller")
    assert redis_client.get("ivr:acct:{acct-a}:fails") is None
    assert redis_client.get("ivr:caller:{caller}:fails") == b"1"
