"""``ivr worker``: run the RQ worker (CRM webhook, lockout SMS, audit trail).

Errors an operator can act on (no Redis configured, Redis or the database unreachable,
an unknown queue name) are one ``error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import logging

import click
import redis

from ivr.config import Settings
from ivr.exceptions import IVRError
from ivr.jobs import QUEUES
from workers.main import run

EXPECTED_ERRORS = (IVRError, OSError, redis.RedisError)


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
    try:
        run(settings, queues or None, burst=burst)
    except EXPECTED_ERRORS as exc:
        message = " ".join((str(exc) or type(exc).__name__).split())
        click.echo(f"error: {message}", err=True)
        raise click.exceptions.Exit(1) from None
