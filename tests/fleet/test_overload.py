"""Webhooks queued behind stuck ones under the production server keep their deadline.

Bound proved: on a node with one worker thread and a frozen PostgreSQL, PIN steps sent at
once queue behind each other, the first running into its deadline. Each one is answered
within ``[server] webhook_deadline_s`` + 0.5 s *of its arrival*, routed to an agent as not
identified (``unavailable``): the deadline counts from when the server queued the request
(``ivr.serving.ThreadWorker``), and a request that already waited over half of it is
answered at once (shed) instead of starting its work. Without that, the n-th request is
answered after about n deadlines.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import ACCOUNTS, AUTH_TOKEN, SINGLE_OWNER
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.fleet.pg_node import DEADLINE_S, assert_handed_over, seeded, timed
from tests.fleet.private_postgres import PrivatePostgres
from tests.fleet.redis_nodes import tail
from tests.fleet.web_nodes import WebNode
from tests.measured import report
from tests.twilio_phone import Call

SLACK_S = 0.5
QUEUED = 4
PIN = ACCOUNTS[0][3]


def test_queued_webhooks_are_answered_within_the_deadline_of_their_arrival(
    redis_url: str, tmp_path: Path
) -> None:
    """PIN steps queued behind a stuck one on a single worker thread are each answered
    within deadline + 0.5 s of being sent, as unavailable; the queued ones are shed."""
    with PrivatePostgres() as pg:
        env = seeded(tmp_path, redis_url, pg, max_failures=2 * QUEUED)
        with WebNode(env, workers=1, threads=1) as node:
            hits = Webhooks()
            calls = [Call(HttpPoster([node.url], hits), AUTH_TOKEN, SINGLE_OWNER)
                     for _ in range(QUEUED)]  # fmt: skip
            for call in calls:
                assert call.walk("1").gather is not None  # at the PIN prompt
            pg.freeze()
            try:
                with ThreadPoolExecutor(QUEUED) as pool:
                    answers = list(pool.map(lambda c: timed(lambda: c.press(PIN)), calls))
            finally:
                pg.thaw()
            slowest = max(seconds for _, seconds in answers)
            report(f"[overload] {QUEUED} PIN steps queued on one thread behind a frozen "
                   f"PostgreSQL: answered in {slowest:.2f} s at most "
                   f"(deadline {DEADLINE_S} s)")  # fmt: skip
            for twiml, seconds in answers:
                assert seconds < DEADLINE_S + SLACK_S, ([s for _, s in answers], tail(node.log))
                assert_handed_over(twiml)
            assert "shed" in node.log.read_text(), tail(node.log)
