"""What ``ivr dev`` writes and prints: its config, demo accounts, session file, banner, log.

``.ivr-dev/session.json`` tells ``ivr call`` in the same directory where the running
``ivr dev`` listens, which public URL it validates signatures against, and its config.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ivr.calls import STEP_MESSAGE
from ivr.config import Settings
from ivr.services import Services
from ivr.store.accounts_csv import ImportRow
from ivr.twilio_number import OwnedNumber, service_settings

DEV_DIR = Path(".ivr-dev")
GENERATED_CONFIG = DEV_DIR / "config.toml"
SESSION_FILE = DEV_DIR / "session.json"

# Demo accounts (dev only): one number owned by one account, one shared by two.
DEMO_ACCOUNTS = (
    ("100001", "Erika Mustermann", ("+4930901820",), "246810"),
    ("100002", "Max Mustermann", ("+4940123456", "+4989765432"), "135790"),
    ("100003", "Jane Doe", ("+4940123456",), "112358"),
)


def dev_config_text(directory: Path) -> str:
    """A fresh local config with random secrets."""
    return f"""# Written by `ivr dev` for local use only. Delete it to start over.
[twilio]
# Replace with your Twilio auth token when real calls come in through a tunnel
# (or export TWILIO_AUTH_TOKEN); `ivr call` signs with whatever is set here.
auth_token = "{secrets.token_hex(16)}"

[pin_store]
url = "sqlite:///{(directory / "ivr.sqlite3").resolve()}"
pepper = "{secrets.token_hex(32)}"

[routing]
mode = "number"
number = "+4930901820"

[api]
token = "{secrets.token_hex(24)}"

[console]
# The agent console (/agent) is on once [console.agents] names an agent: the banner of
# `ivr dev` says how.
secret_key = "{secrets.token_urlsafe(48)}"
"""


def dev_config_path(config_path: str | None) -> str:
    """``config_path``, or the generated ``.ivr-dev/config.toml`` (written on first use)."""
    if config_path is None:
        DEV_DIR.mkdir(exist_ok=True)
        if not GENERATED_CONFIG.exists():
            # Created owner-only from the start: it holds the pepper and the tokens.
            fd = os.open(GENERATED_CONFIG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(dev_config_text(DEV_DIR))
        config_path = str(GENERATED_CONFIG)
    return config_path


def uses_generated_token(config_path: str) -> bool:
    """True when Twilio would be checked against the random token ``ivr dev`` made up."""
    from_env = os.environ.get("TWILIO_AUTH_TOKEN") or os.environ.get("IVR_TWILIO_AUTH_TOKEN")
    return Path(config_path) == GENERATED_CONFIG and not from_env


def seed_demo_accounts(services: Services) -> None:
    """Import the demo accounts into an empty PIN store."""
    if services.pins.count() > 0:
        return
    rows = [ImportRow(i, cn, name, phones, pin) for i, (cn, name, phones, pin) in
            enumerate(DEMO_ACCOUNTS, start=2)]  # fmt: skip
    services.pins.upsert_many(rows)


@dataclass(frozen=True)
class DevSession:
    """A running ``ivr dev``: where it listens, the public URL it validates, its config."""

    url: str
    public_base_url: str
    config: str
    # The Redis it runs on (its embedded one is on a random port): other ivr commands
    # in the same directory use it (see command_config).
    redis_url: str = ""


def write_session(session: DevSession) -> None:
    DEV_DIR.mkdir(exist_ok=True)
    SESSION_FILE.write_text(json.dumps(asdict(session)), encoding="utf-8")


def read_session() -> DevSession | None:
    """The ``ivr dev`` running in this directory, if it left its session file."""
    try:
        data: Any = json.loads(SESSION_FILE.read_text(encoding="utf-8"))
        return DevSession(str(data["url"]), str(data["public_base_url"]), str(data["config"]),
                          str(data.get("redis_url", "")))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def command_config() -> tuple[str, dict[str, dict[str, str]]] | None:
    """For an ``ivr`` command run without a config in an ``ivr dev`` directory: dev's
    config, and the Redis of the ``ivr dev`` running there (None: not such a directory)."""
    session = read_session()
    if session is not None:
        redis = {"redis": {"url": session.redis_url}} if session.redis_url else {}
        return session.config, redis
    if GENERATED_CONFIG.exists():
        return str(GENERATED_CONFIG), {}
    return None


def remove_session() -> None:
    SESSION_FILE.unlink(missing_ok=True)


def banner(
    settings: Settings,
    session: DevSession,
    redis_note: str,
    pointed: OwnedNumber | None,
    generated_token: bool,
) -> str:
    """Where everything runs, what to paste into the Twilio console, how to try it."""
    public = settings.server.public_base_url.rstrip("/")
    urls = service_settings(public or session.url)
    lines = [f"Service-PIN IVR running on {session.url}  ({redis_note})"]
    if public:
        lines.append(f"Public URL (signatures are validated against it): {public}")
    lines.append("")
    if pointed is not None:
        old = pointed.voice
        lines += [
            f"Twilio number {pointed.phone_number} now points here (restored on exit):",
            f"  voice URL        {urls.voice_url}  (was {old.voice_url or 'empty'})",
            f"  status callback  {urls.status_callback}  (was {old.status_callback or 'empty'})",
            f"  fallback URL     {urls.voice_fallback_url}"
            f"  (was {old.voice_fallback_url or 'empty'})",
        ]
    else:
        lines += [
            "Twilio console > Phone Numbers > your number > Voice Configuration:",
            f"  A call comes in         Webhook  {urls.voice_url}           HTTP POST",
            f"  Primary handler fails   Webhook  {urls.voice_fallback_url}  HTTP POST",
            f"  Call status changes              {urls.status_callback}    HTTP POST",
        ]
    if not public:
        lines.append(
            "  Twilio cannot reach this machine: run `ivr dev --ngrok` (or set [server] "
            "public_base_url to your tunnel's https URL)."
        )
    if public and generated_token:
        lines.append(
            "  Twilio signs with your account's auth token: export TWILIO_AUTH_TOKEN=… "
            "(or set [twilio] auth_token), or real calls get 403."
        )
    lines += ["", "Demo accounts (customer number, name, phones, Service-PIN):"]
    for cn, name, phones, pin in DEMO_ACCOUNTS:
        lines.append(f"  {cn}  {name:<17} {', '.join(phones):<27} PIN {pin}")
    lines += [
        "",
        f'Try it without Twilio:  ivr call --keys "1,{DEMO_ACCOUNTS[0][3]}#"'
        "  (or just `ivr call`, and type)",
        "Screen-pop API: GET /api/calls/<CallSid>, Authorization: Bearer <[api] token>",
        *console_lines(settings, session),
        f"Config: {session.config}  (other ivr commands run in this directory use it and "
        "this Redis)",
        "Live call log below; Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


# Python one-liners the banner prints; getpass keeps the password off the screen and out
# of the shell history.
HASH_COMMAND = (
    "import getpass; from werkzeug.security import generate_password_hash as g; "
    "print(g(getpass.getpass()))"
)
RANDOM_KEY_COMMAND = "import secrets; print(secrets.token_urlsafe(48))"


def console_lines(settings: Settings, session: DevSession) -> list[str]:
    """Where the agent console is, or exactly what to add to the config to turn it on."""
    url = f"{session.url}/agent"
    console = settings.console
    if console.agents:
        return [f"Agent console: {url}  (agents: {', '.join(sorted(console.agents))})"]
    python = shlex.quote(sys.executable)  # the interpreter that has werkzeug
    lines = [f"Agent console: off. To turn it on, add to {session.config} and restart ivr dev:"]
    if len(console.secret_key) < 32:
        lines += [
            "  [console]",
            '  secret_key = "<32+ random characters>"',
            f"    make one: {python} -c {shlex.quote(RANDOM_KEY_COMMAND)}",
            "    (or export IVR_CONSOLE_SECRET_KEY instead)",
        ]
    return [
        *lines,
        "  [console.agents]",
        '  anna = "<password hash>"',
        f"    make one (asks for the password): {python} -c {shlex.quote(HASH_COMMAND)}",
        f"  then log in at {url}",
    ]


def describe_step(
    call_sid: object,
    came_from: object,
    node: object,
    routed: object,
    identified: object,
    reason: object,
    attempts: object,
) -> str:
    """One call step as a person reads it: CallSid, step, outcome (never any digits)."""
    where = f"call {call_sid}  {'new call' if came_from == 'start' else came_from} -> {node}"
    if routed is True:
        flag = "IDENTIFIED" if identified is True else "not identified"
        return f"{where}: to an agent, {flag} (reason {reason}, PIN attempts {attempts})"
    return where + (f"  (PIN attempts {attempts})" if attempts else "")


class StepFormatter(logging.Formatter):
    """Call steps rebuilt from the record's fields alone; other records as usual."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if record.msg == STEP_MESSAGE and isinstance(args, tuple) and len(args) == 7:
            return f"{self.formatTime(record, self.datefmt)} {describe_step(*args)}"
        return super().format(record)
