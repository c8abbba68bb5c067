"""A Sentinel client follows a change of primary even while the former one still answers.

Bound proven: a primary frozen until the sentinels promote a replica, then thawed, answers
again as a primary until the sentinels convert it (~10 s later); a link that had pooled
connections to it writes to the new primary from PRIMARY_RECHECK_S after the thaw on.
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


@pytest.fixture
def sentinel() -> Iterator[SentinelHarness]:
    """A primary, two replicas and three sentinels, all running and in agreement."""
    with SentinelHarness() as harness:
        yield harness


def write(link: Link, key: str) -> None:
    """SET ``key`` through the link, as a webhook's round does."""
    assert link.send([command("SET", key, "1")], PROBE) == [b"OK"]


def test_writes_leave_a_passed_over_primary(sentinel: SentinelHarness) -> None:
    """After a failover that passed over a primary which still answers, the link's next
    write lands on the new primary, not on the former one's pooled connections."""
    link = open_link(RedisSettings(url=sentinel.url))
    try:
        write(link, "before")  # a pooled connection to the first primary
        former = sentinel.pass_over()
        assert former.role() == "master"  # thawed, and still believes it
        time.sleep(PRIMARY_RECHECK_S)
        write(link, "after")
        primary = sentinel.primary()
        assert primary is not former
        assert (primary.call("EXISTS", "after"), former.call("EXISTS", "after")) == (1, 0)
    finally:
        link.close()
