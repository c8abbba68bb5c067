"""The ``ivr`` command. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

from typing import Any

import click

from ivr.cli.accounts import accounts
from ivr.cli.audit import audit
from ivr.cli.call import call
from ivr.cli.callers import callers
from ivr.cli.dev import dev
from ivr.cli.flow import flow
from ivr.cli.settings import ConfigSource
from ivr.cli.worker import worker

# Commands that build their own settings (dev fills in local defaults itself; call uses
# dev's config by default; flow needs no config at all).
SELF_CONFIGURED = frozenset({"dev", "call", "flow"})


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
    # Loaded when a command needs it, so that every --help works without a config.
    ctx.obj = ConfigSource(config_path)


cli.add_command(accounts)
cli.add_command(dev)
cli.add_command(call)
cli.add_command(flow)
cli.add_command(worker)
cli.add_command(audit)
cli.add_command(callers)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="ivr")
