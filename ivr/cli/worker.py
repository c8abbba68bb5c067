"""``ivr worker``: run the RQ worker (CRM webhook, lockout SMS, audit trail).

Errors an operator can act on (no Redis configured, Redis or the database unreachable,
an unknown queue name) are one ``error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import logging
import os

import click

from ivr.cli.errors import one_line_errors
from ivr.cli.settings import pass_settings
from ivr.config import Settings
from ivr.embedded_redis import shut_down
from ivr.jobs import QUEUES
from ivr.orphans import stop_with_parent
from workers.main import run


@click.command("worker")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME",
    help=f"Serve only this queue (repeatable): {', '.join(QUEUES)}. Default: all.",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
# `ivr dev` passes its own pid: the worker then stops (warm) when `ivr dev` dies, and
# then stops the embedded Redis too, which must outlive the worker's shutdown.
@click.option("--parent-pid", type=int, hidden=True)
@click.option("--stop-redis-with-parent", is_flag=True, hidden=True)
@pass_settings
def worker(
    settings: Settings,
    queues: tuple[str, ...],
    burst: bool,
    parent_pid: int | None,
    stop_redis_with_parent: bool,
) -> None:
    """Run the background worker until stopped (Ctrl-C finishes the current job)."""
    try:
        if parent_pid is not None and not stop_with_parent(parent_pid):
            return  # the parent is already gone: nobody would ever stop this worker
        _run(settings, queues, burst)
    finally:
        if stop_redis_with_parent and parent_pid is not None and os.getppid() != parent_pid:
            shut_down(settings.redis.url)


def _run(settings: Settings, queues: tuple[str, ...], burst: bool) -> None:
    # Job logs (workers.*) and rq's own share one format; a no-op if logging is set up.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with one_line_errors():
        run(settings, queues or None, burst=burst)
