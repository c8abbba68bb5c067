"""What a finished call leaves in Redis: at most 1 KiB, jobs and all (issue 11, item 10).

rq kept every finished job with its result for a day (~15 KB per call with the CRM
webhook on). Finished jobs are now deleted at once; what stays until it expires is the
call's state and status and the jobs' small markers.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.twilio_phone import Call
from tests.workers.conftest import Drain
from tests.workers.servers import LocalServer

Phone = Callable[..., Call]
CALLS = 200
BUDGET_BYTES = 1024


def dataset_bytes(client: redis.Redis) -> int:
    """What the keys take (INFO's used_memory_dataset) plus a bucket pointer per key: not
    the server's overhead (client buffers, the keyspace table growing in steps), which
    made the figure jump with whatever ran before."""
    memory = client.info("memory")
    keys = sum(int(db.get("keys", 0)) for name, db in client.info("keyspace").items())
    return int(memory["used_memory_dataset"]) + 8 * keys


def finished_call(phone: Phone) -> None:
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ACCOUNTS[0][3])
    call.hang_up()


def test_a_finished_call_keeps_at_most_a_kib(
    phone: Phone, drain: Drain, crm: LocalServer, redis_client: redis.Redis
) -> None:
    """After identified calls end and the worker delivered their CRM events, Redis holds
    at most 1 KiB more per call, and no rq job, result or registry entry of theirs."""
    finished_call(phone)  # registries, scripts and connections exist before the reading
    drain()
    before = dataset_bytes(redis_client)
    for _ in range(CALLS):
        finished_call(phone)
    drain()
    per_call = (dataset_bytes(redis_client) - before) / CALLS
    assert len(crm.requests) == 2 * (CALLS + 1)  # routed and ended, each call
    assert per_call <= BUDGET_BYTES, per_call
    leftovers = [k for k in redis_client.scan_iter("rq:job:*")] + [
        k for k in redis_client.scan_iter("rq:results:*")
    ]
    assert leftovers == []
    assert redis_client.zcard("rq:finished:crm") == 0
