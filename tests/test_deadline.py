"""The webhook deadline: the race between the work's commit and the answer's expiry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from ivr.deadline import UNBOUNDED, Deadline, Phase, has_time
from ivr.store.sql_cancel import Canceller
from ivr.webhook_runner import WebhookRunner


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_commit_with_enough_time_left_claims_the_answer() -> None:
    """A commit with its reserve left wins; a later expire gives nothing up."""
    clock = Clock()
    deadline = Deadline(2.0, clock)
    clock.now += 1.0
    assert deadline.commit(0.5)
    assert not deadline.expire()
    assert deadline.phase is Phase.COMMITTED and not deadline.expired


def test_commit_too_close_to_the_end_counts_as_expired() -> None:
    """A commit without its reserve left fails, and the work is then expired."""
    clock = Clock()
    deadline = Deadline(2.0, clock)
    clock.now += 1.7
    assert not deadline.commit(0.5)
    assert deadline.expired
    assert deadline.expire()


def test_expire_runs_the_cancel_hook_once_and_only_before_finish() -> None:
    """Expiring runs the cancel hook of running work; after finish() nothing is cancelled."""
    cancelled: list[str] = []
    running = Deadline(2.0)
    running.on_expire(lambda: cancelled.append("running"))
    assert running.expire() and running.expire()
    done = Deadline(2.0)
    done.on_expire(lambda: cancelled.append("done"))
    done.finish()
    assert not done.expire()
    assert cancelled == ["running"]
    assert not running.commit(0.0)


def test_unbounded_always_commits() -> None:
    """The shared UNBOUNDED deadline never expires and every commit succeeds."""
    assert UNBOUNDED.commit(1e9) and not UNBOUNDED.expire() and not UNBOUNDED.expired
    assert UNBOUNDED.remaining() == float("inf")


def test_a_budget_is_the_time_left_less_the_reserve() -> None:
    """A budget ends where only the reserve is left of the deadline; past that it is
    spent; without a deadline there is none (each read keeps its socket timeout)."""
    clock = Clock()
    deadline = Deadline(2.0, clock=clock)
    budget = deadline.budget(0.75)
    assert budget is not None and has_time(budget)
    assert budget.left() == pytest.approx(1.25, abs=0.05)
    clock.now += 1.3
    assert not has_time(deadline.budget(0.75))
    assert UNBOUNDED.budget(0.75) is None and has_time(None)


LATE: list[str] = []


@pytest.fixture
def runner() -> Iterator[WebhookRunner]:
    """A runner with a short deadline that notes each late answer in LATE."""
    LATE.clear()
    made = WebhookRunner(0.3, Canceller(), threads=2, on_late=lambda: LATE.append("late"))
    yield made
    made.close()


def test_work_done_in_time_is_the_answer(runner: WebhookRunner) -> None:
    """Work that finishes before the deadline gives the answer."""
    assert runner.run(lambda deadline: "work", late=lambda: "late") == "work"


def test_errors_of_the_work_reach_the_caller(runner: WebhookRunner) -> None:
    """An exception of the work is raised in the answering thread."""

    def fail(_: Deadline) -> str:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        runner.run(fail, late=lambda: "late")


def test_slow_work_is_answered_late_at_the_deadline(runner: WebhookRunner) -> None:
    """Work still running at the deadline: the late answer, within the deadline plus a
    little, and the work sees its deadline expired."""
    release = threading.Event()
    seen: list[bool] = []

    def slow(deadline: Deadline) -> str:
        release.wait(5)
        seen.append(deadline.expired)
        return "work"

    started = time.monotonic()
    assert runner.run(slow, late=lambda: "late") == "late"
    assert time.monotonic() - started < 0.3 + 0.2
    assert LATE == ["late"]
    release.set()
    for _ in range(100):
        if seen:
            break
        time.sleep(0.01)
    assert seen == [True]


def test_committed_work_is_waited_for(runner: WebhookRunner) -> None:
    """Work that committed before the deadline is the answer although it ends just after."""

    def committed(deadline: Deadline) -> str:
        assert deadline.commit(0.1)
        time.sleep(0.4)
        return "work"

    assert runner.run(committed, late=lambda: "late") == "work"
    assert LATE == []


def test_a_deadline_counts_from_when_the_request_arrived() -> None:
    """A deadline given the request's arrival ends ``seconds`` after it, not after now."""
    clock = Clock()
    deadline = Deadline(2.0, clock, start=clock.now - 0.5)
    assert deadline.remaining() == pytest.approx(1.5)


def test_work_of_a_request_that_queued_briefly_runs_with_the_rest(runner: WebhookRunner) -> None:
    """A request that waited under half the deadline before the app is served, and its
    work's deadline is what is left of the deadline since it arrived."""
    left: list[float] = []

    def work(deadline: Deadline) -> str:
        left.append(deadline.remaining())
        return "work"

    assert runner.run(work, late=lambda: "late", arrived=time.monotonic() - 0.1) == "work"
    assert 0.1 < left[0] <= 0.2


def test_a_request_that_queued_over_half_the_deadline_is_shed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request that waited over half the deadline before the app saw it is answered
    late at once, its work never started, and the shed is counted and logged once."""
    shed: list[str] = []
    runner = WebhookRunner(0.3, Canceller(), threads=2, on_shed=lambda: shed.append("shed"))
    started: list[str] = []

    def work(_: Deadline) -> str:
        started.append("work")
        return "work"

    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                answer = runner.run(work, late=lambda: "late", arrived=time.monotonic() - 0.2)
                assert answer == "late"
        assert runner.run(lambda _: "work", late=lambda: "late",
                          arrived=time.monotonic() - 0.1) == "work"  # fmt: skip
    finally:
        runner.close()
    assert (shed, started) == (["shed"] * 3, [])
    assert caplog.text.count("shed") == 1  # one line a second, with the count
    assert "1 webhook(s) shed" in caplog.text  # the first at once; the rest counted
