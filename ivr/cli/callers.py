"""``ivr callers unlock NUMBER``: lift the PIN-entry block of one caller number.

A caller number that sent too many wrong PINs is blocked from PIN entry for
``[lockout] caller_lock_s`` (``withheld`` names the shared bucket of withheld numbers).
The unlock is audited first, like an account's.
"""

from __future__ import annotations

import click

from ivr import phone, unlock
from ivr.cli.errors import fail, one_line_errors
from ivr.cli.settings import pass_settings
from ivr.cli.unlocking import lockout_tools
from ivr.config import Settings


@click.group("callers")
def callers() -> None:
    """Manage the PIN-entry blocks of caller numbers."""


@callers.command("unlock")
@click.argument("number")
@pass_settings
def unlock_caller(settings: Settings, number: str) -> None:
    """Lift the block of caller NUMBER (any format; "withheld" for withheld numbers)."""
    withheld = number.strip().lower() == unlock.WITHHELD
    e164 = None if withheld else phone.normalize(number, settings.server.default_region)
    if e164 is None and not withheld:
        fail(f"{number!r} is not a valid phone number (or 'withheld')")
    with one_line_errors(), lockout_tools(settings) as tools:
        cleared = tools.unlocker.caller(e164)
    shown = e164 or "withheld numbers"
    click.echo(f"unlocked caller {shown}" if cleared else f"caller {shown} had no block")
