"""A Sentinel client follows a change of primary even while the former one still answers.

Bound proven: a primary frozen until the sentinels promote a replica, then thawed, answers
again as a primary until the sentinels convert it (~10 s later); a link that had pooled
connections to it writes to the new primary within 4 x PRIMARY_RECHECK_S of the thaw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ivr.config import RedisSettings
from ivr.store.link import Link
from ivr.store.redis_client import PRIMARY_RECHECK_S, open_link
from ivr.store.rounds import command
from tests.fleet.sentinel import SentinelHarness

PROBE = "test round"
# The re-check interval, with room for a loaded machine's sentinels to answer.
MOVED_WITHIN_S = 4 * PRIMARY_RECHECK_S


@pytest.fixture
def sentinel() -> Iterator[SentinelHarness]:
    """A primary, two replicas and three sentinels, all running and in agreement."""
    with SentinelHarness() as harness:
        yield harness


def write(link: Link, key: str) -> None:
    """SET ``key`` through the link, as a webhook's round does."""
    assert link.send([command("SET", key, "1")], PROBE) == [b"OK"]


def test_writes_leave_a_passed_over_primary(sentinel: SentinelHarness) -> None:
    """After a failover that passed over a primary which still answers, the link's
    writes land on the new primary within MOVED_WITHIN_S of its return, not on the former
    one's pooled connections (which would keep them until its conversion, ~10 s)."""
    link = open_link(RedisSettings(url=sentinel.url))
    try:
        write(link, "before")  # a pooled connection to the first primary
        former = sentinel.pass_over()
        thawed = time.monotonic()
        assert former.role() == "master"  # thawed, and still believes it
        primary = sentinel.primary()
        assert primary is not former
        landed: list[tuple[int, int]] = []
        while time.monotonic() - thawed < MOVED_WITHIN_S:
            key = f"after-{len(landed)}"
            write(link, key)
            landed.append((primary.call("EXISTS", key), former.call("EXISTS", key)))
            if landed[-1] == (1, 0):
                break
            time.sleep(PRIMARY_RECHECK_S / 5)
        assert landed[-1] == (1, 0), landed
    finally:
        link.close()
