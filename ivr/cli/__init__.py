"""The ``ivr`` command. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import click

from ivr import config
from ivr.cli.accounts import accounts
from ivr.cli.dev import dev
from ivr.exceptions import IVRError

# Commands that build their own settings (dev fills in local defaults itself).
SELF_CONFIGURED = frozenset({"dev"})


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="IVR_CONFIG",
    help="Config file (TOML); default: $IVR_CONFIG.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Service-PIN IVR: Twilio webhooks that identify callers by Service-PIN."""
    if ctx.invoked_subcommand in SELF_CONFIGURED:
        ctx.obj = config_path
        return
    try:
        ctx.obj = config.load(config_path)
    except IVRError as exc:
        fail(str(exc), status=2)


def fail(message: str, status: int = 1) -> None:
    """Print ``error: message`` on one line and exit with ``status``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


cli.add_command(accounts)
cli.add_command(dev)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="ivr")
