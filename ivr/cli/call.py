"""``ivr call``: a terminal phone for the running service (see :mod:`ivr.phone_sim`).

It needs the service's auth token to sign like Twilio, so it reads the same config:
``--config``/``$IVR_CONFIG``, else the one ``ivr dev`` uses in this directory. Without
``--url`` it calls the ``ivr dev`` running here (its port and tunnel URL are in
``.ivr-dev/session.json``), else http://127.0.0.1:5000.

Exit status: 0 reached an agent identified · 1 reached an agent not identified ·
2 bad usage or config · 3 the call ended without reaching an agent (hang-up) ·
4 the call failed (service unreachable, 403 signature mismatch, HTTP error, bad TwiML).
"""

from __future__ import annotations

import sys

import click

from ivr.cli.dev_support import DEMO_ACCOUNTS, GENERATED_CONFIG, DevSession, read_session
from ivr.cli.errors import fail, load_config
from ivr.config import Settings
from ivr.phone_sim import (
    CallerId,
    Endpoint,
    LineKeypad,
    Outcome,
    ScriptedKeypad,
    TerminalKeypad,
    TerminalPhone,
    Transport,
    WebhookError,
    parse_script,
)
from ivr.phone_sim.keys import Keypad

DEFAULT_URL = "http://127.0.0.1:5000"
DEMO_CALLER = DEMO_ACCOUNTS[0][2][0]  # owns exactly one demo account: straight to the PIN

EXIT_IDENTIFIED = 0
EXIT_NOT_IDENTIFIED = 1
EXIT_USAGE = 2
EXIT_NO_AGENT = 3
EXIT_FAILED = 4
EXIT_BY_OUTCOME = {
    Outcome.IDENTIFIED: EXIT_IDENTIFIED,
    Outcome.NOT_IDENTIFIED: EXIT_NOT_IDENTIFIED,
    Outcome.NO_AGENT: EXIT_NO_AGENT,
}


def load_settings(config_path: str | None, session: DevSession | None) -> Settings:
    """The service's settings: the given config, ``ivr dev``'s, or a one-line error."""
    path = config_path or (session.config if session else None)
    if path is None and GENERATED_CONFIG.exists():
        path = str(GENERATED_CONFIG)
    if path is None:
        fail(
            "no config: pass --config FILE (the service's config, for its auth token) "
            "or run `ivr dev` in this directory first",
            EXIT_USAGE,
        )
    return load_config(path, EXIT_USAGE)


def endpoint(
    url: str | None, public_url: str | None, settings: Settings, session: DevSession | None
) -> Endpoint:
    """Where to send requests, and the public URL to sign them over (as Twilio would)."""
    local = (url or (session.url if session else None) or DEFAULT_URL).rstrip("/")
    public = public_url
    if public is None and session is not None and session.url == local:
        public = session.public_base_url or None
    public = public or settings.server.public_base_url or local
    for name, value in (("--url", local), ("--public-url", public)):
        if not value.startswith(("http://", "https://")):
            fail(f"{name} must start with http:// or https://, got {value!r}", EXIT_USAGE)
    return Endpoint(local, public.rstrip("/"))


def keypad(script: str | None) -> Keypad:
    """Scripted keys, the terminal (one key at a time), or lines from a pipe."""
    if script is not None:
        try:
            return ScriptedKeypad(parse_script(script))
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    if sys.stdin.isatty():
        click.echo("Type keys 0-9 * # as asked; Enter ends your input early, q hangs up.")
        return TerminalKeypad(sys.stdin.fileno(), lambda key: click.echo(key, nl=False))
    return LineKeypad(sys.stdin.readline)


@click.command("call")
@click.option("--url", help=f"The running service; default: `ivr dev` here, else {DEFAULT_URL}.")
@click.option(
    "--public-url",
    help="URL Twilio would call, signed over; default: [server] public_base_url, else --url.",
)
@click.option(
    "--from",
    "caller",
    default=DEMO_CALLER,
    show_default=True,
    help="Caller number; withheld: anonymous, Restricted, '' or +266696687.",
)
@click.option("--to", default="+4930555000", show_default=True, help="The number called.")
@click.option("--keys", help='Scripted keys, one entry per Gather: "1,123456#" ("" = silence).')
@click.pass_obj
def call(
    config_path: str | None,
    url: str | None,
    public_url: str | None,
    caller: str,
    to: str,
    keys: str | None,
) -> None:
    """Call the running service like Twilio does, in the terminal.

    Exit status: 0 reached an agent identified, 1 reached an agent not identified,
    2 bad usage or config, 3 no agent reached (hang-up), 4 the call failed.
    """
    session = read_session()
    settings = load_settings(config_path, session)
    where = endpoint(url, public_url, settings, session)
    pad = keypad(keys)
    caller_id = CallerId(caller, to, settings.twilio.account_sid or CallerId("").account_sid)
    phone = TerminalPhone(
        Transport(where, settings.twilio.auth_token),
        pad,
        click.echo,
        caller_id,
        api_token=settings.api.token,
    )
    try:
        result = phone.call()
    except WebhookError as exc:
        fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("\n(caller hangs up)")
        sys.exit(EXIT_NO_AGENT)
    sys.exit(EXIT_BY_OUTCOME[result.outcome])
