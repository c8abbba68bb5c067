"""Start several calls at the same instant, each in its own thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

T = TypeVar("T")


def race(calls: Sequence[Callable[[], T]], prepare: Callable[[int], None] | None = None) -> list[T]:
    """Run every call at once (after ``prepare(i)`` in its thread); results in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)
    done = [False] * len(calls)

    def run(i: int) -> None:
        if prepare is not None:
            prepare(i)
        barrier.wait()
        results[i] = calls[i]()
        done[i] = True

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(done), "a racing call did not finish"
    return cast(list[T], results)
