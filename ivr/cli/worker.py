"""``ivr worker``: run the RQ worker (CRM webhook, lockout SMS, audit trail).

Errors an operator can act on (no Redis configured, Redis or the database unreachable,
an unknown queue name) are one ``error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import logging

import click

from ivr.cli.errors import one_line_errors
from ivr.config import Settings
from ivr.jobs import QUEUES
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
@click.pass_obj
def worker(settings: Settings, queues: tuple[str, ...], burst: bool) -> None:
    """Run the background worker until stopped (Ctrl-C finishes the current job)."""
    # Job logs (workers.*) and rq's own share one format; a no-op if logging is set up.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with one_line_errors():
        run(settings, queues or None, burst=burst)
