"""The resaver retries pending saves until they succeed, and holds a bounded number."""

from __future__ import annotations

import threading

from ivr.exceptions import DependencyError
from ivr.resave import Resaver


class Flaky:
    """A save that fails with DependencyError ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.done = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DependencyError("redis: call state save failed (TimeoutError)")
        self.done.set()


def test_a_save_is_retried_until_redis_answers() -> None:
    """A save failing twice is tried again until it succeeds, then forgotten."""
    resaver = Resaver(retry_s=0.01)
    save = Flaky(2)
    resaver.add("CA1", save)
    assert save.done.wait(2)
    assert save.calls == 3
    resaver.close()
    assert resaver.pending() == 0


def test_a_later_save_for_the_same_call_replaces_the_earlier() -> None:
    """Only the newest pending save of a call runs."""
    resaver = Resaver(retry_s=0.01)
    first, second = Flaky(0), Flaky(0)
    with resaver._wake:  # hold the thread off until both are queued
        resaver.add("CA1", first)
        resaver.add("CA1", second)
    assert second.done.wait(2)
    resaver.close()
    assert first.calls == 0


def test_pending_saves_are_bounded_and_drops_counted() -> None:
    """Past ``limit`` the oldest pending save is dropped, and each drop is counted, also
    those still pending at close."""
    dropped: list[int] = []
    resaver = Resaver(retry_s=60, limit=2, on_dropped=lambda: dropped.append(1))
    for sid in ("CA1", "CA2", "CA3"):
        resaver.add(sid, Flaky(10**6))
    assert resaver.pending() == 2 and len(dropped) == 1
    resaver.close()
    assert resaver.pending() == 0 and len(dropped) == 3


def test_a_save_older_than_the_call_is_given_up() -> None:
    """A save still failing when the call state would have expired is dropped."""
    dropped = threading.Event()
    resaver = Resaver(retry_s=0.01, give_up_s=0.05, on_dropped=dropped.set)
    resaver.add("CA1", Flaky(10**6))
    assert dropped.wait(2)
    assert resaver.pending() == 0
    resaver.close()
