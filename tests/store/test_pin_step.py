"""Loading a call and counting its PIN submission in one script: the same as begin()."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest
import redis

from ivr.config import LockoutSettings, PinStoreSettings
from ivr.flow.actions import Reason
from ivr.flow.state import CallState
from ivr.store.calls import CallStore
from ivr.store.hashing import PinHasher
from ivr.store.lockout import ANONYMOUS_CALLER, AttemptStatus, Lockout
from ivr.store.pin_step import PinStepLoader, sidecar
from tests.racing import race

LIMITS = LockoutSettings(
    account_max_failures=3, account_window_s=3600, account_lock_s=1800,
    caller_max_failures=1000, caller_window_s=3600, caller_lock_s=3600,
)  # fmt: skip
HASHER = PinHasher.from_settings(PinStoreSettings(pepper="pepper-" + "x" * 24))
SID = "CA" + "1" * 32
AT_PIN = CallState(SID, "+4930111111", "de", "pin", seq=3, customer_number="200001")


def loader(client: redis.Redis, limits: LockoutSettings = LIMITS) -> PinStepLoader:
    return PinStepLoader(client, CallStore(client, 3600), Lockout(client, limits))


def store(client: redis.Redis, state: CallState, with_subjects: bool = True) -> None:
    subjects = sidecar(HASHER, state) if with_subjects else None
    assert CallStore(client, 3600).create(state, subjects)


def failures(client: redis.Redis, number: str = "200001") -> int:
    value = client.get(f"ivr:acct:{{{HASHER.subject('account', number)}}}:fails")
    return int(value or 0)


def test_counts_a_submission_the_engine_will_verify(redis_client: redis.Redis) -> None:
    """At the prompt and step named, the state comes back and the attempt is counted."""
    store(redis_client, AT_PIN)
    state, counted = loader(redis_client).load(SID, "pin", 3)
    assert state == AT_PIN
    assert counted is not None and counted.attempt.status is AttemptStatus.ALLOWED
    assert counted.account_key == HASHER.subject("account", "200001")
    assert counted.caller_key == HASHER.subject("caller", "+4930111111")
    assert failures(redis_client) == 1


@pytest.mark.parametrize(
    ("stored", "node", "seq"),
    [
        (AT_PIN, "menu", 3),  # another prompt
        (AT_PIN, "pin", 2),  # a replayed step
        (AT_PIN, "pin", 4),  # a step from the future
        (dataclasses.replace(AT_PIN, routed=True, reason=Reason.VERIFIED), "pin", 3),
        (dataclasses.replace(AT_PIN, customer_number=None), "pin", 3),
    ],
    ids=["other prompt", "replay", "future step", "routed", "no customer number"],
)
def test_counts_nothing_the_engine_would_not_verify(
    redis_client: redis.Redis, stored: CallState, node: str, seq: int
) -> None:
    """Wherever the engine would not verify, nothing is counted and the state still loads."""
    store(redis_client, stored)
    state, counted = loader(redis_client).load(SID, node, seq)
    assert state == stored and counted is None
    assert failures(redis_client) == 0


def test_state_without_subjects_is_loaded_not_counted(redis_client: redis.Redis) -> None:
    """A state stored without subjects (e.g. before an upgrade) leaves the count to begin()."""
    store(redis_client, AT_PIN, with_subjects=False)
    assert loader(redis_client).load(SID, "pin", 3) == (AT_PIN, None)


def test_unknown_or_corrupt_call_counts_nothing(redis_client: redis.Redis) -> None:
    """No state, or an unreadable one: (None, None), nothing counted."""
    assert loader(redis_client).load(SID, "pin", 3) == (None, None)
    redis_client.set(f"ivr:call:{{{SID}}}", b"{not json")
    assert loader(redis_client).load(SID, "pin", 3) == (None, None)


def test_withheld_number_counts_in_the_shared_bucket(redis_client: redis.Redis) -> None:
    """A call without a caller number counts against the one anonymous caller subject."""
    store(redis_client, dataclasses.replace(AT_PIN, caller=None))
    _, counted = loader(redis_client).load(SID, "pin", 3)
    assert counted is not None and counted.caller_key == ANONYMOUS_CALLER


def test_same_limits_as_begin(redis_client: redis.Redis) -> None:
    """Loads and begin() share one counter: the max-th attempt locks, the next is refused."""
    lockout = Lockout(redis_client, LIMITS)
    account = HASHER.subject("account", "200001")
    assert lockout.begin(account, "someone-else").status is AttemptStatus.ALLOWED
    outcomes = []
    for i in range(3):
        sid = f"CA{i:032x}"
        store(redis_client, dataclasses.replace(AT_PIN, call_sid=sid))
        _, counted = loader(redis_client).load(sid, "pin", 3)
        assert counted is not None
        outcomes.append((counted.attempt.status, counted.attempt.locked_now))
    assert outcomes == [
        (AttemptStatus.ALLOWED, False),
        (AttemptStatus.ALLOWED, True),  # the 3rd failure locks pre-emptively
        (AttemptStatus.ACCOUNT_LOCKED, False),
    ]
    assert lockout.begin(account, "someone-else").status is AttemptStatus.ACCOUNT_LOCKED


def test_parallel_submissions_compare_at_most_the_limit(redis_url: str) -> None:
    """Twenty calls submitting at once for one account: exactly the limit may be compared."""
    clients = [redis.Redis.from_url(redis_url, socket_timeout=5) for _ in range(20)]
    sids = [f"CA{i:032x}" for i in range(20)]
    for sid in sids:
        store(clients[0], dataclasses.replace(AT_PIN, call_sid=sid, caller=f"+49301{sid[-6:]}"))
    results = race(
        [partial(loader(c).load, sid, "pin", 3) for c, sid in zip(clients, sids, strict=True)]
    )
    allowed = [r for _, r in results if r is not None and r.attempt.allowed]
    assert len(allowed) == LIMITS.account_max_failures
    for client in clients:
        client.close()


def test_refuses_a_cluster_lockout(redis_client: redis.Redis) -> None:
    """The script names keys itself, which a Redis Cluster forbids: refused up front."""
    per_slot = Lockout(redis_client, LIMITS, single_script=False)
    with pytest.raises(ValueError, match="single Redis"):
        PinStepLoader(redis_client, CallStore(redis_client, 3600), per_slot)
