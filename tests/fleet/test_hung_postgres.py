"""A hung PostgreSQL (SIGSTOP) under the production server: every webhook keeps its deadline.

Bound proved: with the PIN store's server frozen for longer than the deadline, each PIN
and menu step answers within ``[server] webhook_deadline_s`` + 0.5 s, routed to an agent
as not identified (reason ``unavailable``); what is lost is only the identification of
those calls. Their late results (the server thawed, the statements' answers arriving)
are never saved: the stored calls stay as the caller was answered. After the thaw,
calls are identified again without a restart.
"""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import ACCOUNTS, API_TOKEN, AUTH_TOKEN, SINGLE_OWNER
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.fleet.pg_node import DEADLINE_S, assert_handed_over, seeded, timed
from tests.fleet.private_postgres import PrivatePostgres
from tests.fleet.redis_nodes import tail
from tests.fleet.web_nodes import DIRECT, WebNode
from tests.measured import report
from tests.twilio_phone import Call, parse_task

SLACK_S = 0.5
# Held longer than the deadline, so that a result could only arrive late.
FROZEN_S = DEADLINE_S + 4.0
CALLS = 5
PIN = ACCOUNTS[0][3]


def screen_pop(node: WebNode, call: Call) -> dict[str, Any]:
    """The call as the API shows it (the stored state)."""
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{node.url}/api/calls/{call.call_sid}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    with DIRECT.open(request, timeout=5) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


def test_frozen_postgres_answers_every_webhook_within_the_deadline(
    redis_url: str, tmp_path: Path
) -> None:
    """PIN and menu steps during a PostgreSQL freeze answer within deadline + 0.5 s as
    unavailable, the late results are discarded, and calls are identified after the thaw."""
    with PrivatePostgres() as pg:
        env = seeded(tmp_path, redis_url, pg, max_failures=2 * CALLS)
        with WebNode(env) as node:
            hits = Webhooks()

            def place() -> Call:
                return Call(HttpPoster([node.url], hits), AUTH_TOKEN, SINGLE_OWNER)

            # At the PIN prompt, the nodes' SQL connections pooled (the issue's case).
            at_pin = [place() for _ in range(CALLS)]
            for call in at_pin:
                assert call.walk("1").gather is not None
            at_menu = place()
            at_menu.start()
            pg.freeze()
            frozen_at = time.monotonic()
            try:
                with ThreadPoolExecutor(CALLS + 1) as pool:
                    pins = list(pool.map(lambda c: timed(lambda: c.press(PIN)), at_pin))
                    menu = pool.submit(timed, lambda: at_menu.press("1")).result()
                time.sleep(max(FROZEN_S - (time.monotonic() - frozen_at), 0))
            finally:
                pg.thaw()
            time.sleep(1.0)  # the aborted statements' late answers, had they survived
            slowest = max(seconds for _, seconds in [*pins, menu])
            report(
                f"[deadline] PostgreSQL frozen {FROZEN_S:.0f} s: {CALLS} PIN steps and a "
                f"menu step answered in {slowest:.2f} s at most (deadline {DEADLINE_S} s)"
            )
            for twiml, seconds in [*pins, menu]:
                assert seconds < DEADLINE_S + SLACK_S, (seconds, tail(node.log))
                assert_handed_over(twiml)
            for call in [*at_pin, at_menu]:
                shown = screen_pop(node, call)
                assert (shown["routed"], shown["identified"], shown["reason"]) == (
                    True, False, "unavailable",
                ), shown  # fmt: skip
            after = place()
            task = parse_task(after.walk("1", PIN))
            assert (task["identified"], task["reason"]) == (True, "verified"), tail(node.log)
