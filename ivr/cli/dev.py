"""``ivr dev``: the whole service on a laptop; Ctrl-C stops all of it.

With no config it writes ``.ivr-dev/config.toml`` (random pepper, tokens; SQLite under
``.ivr-dev/``) once and reuses it, so demo PINs keep working between runs. An empty
``[redis] url`` starts a private redis-server; ``ivr worker`` runs as a child process.
``--ngrok`` opens a tunnel and makes its URL the public base URL; ``--twilio-number``
points that number's webhooks here and restores them on exit. The pieces that reach
outside (tunnel, Twilio REST client, waiting) are parameters of :func:`run_dev`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
from werkzeug.serving import make_server

from ivr import config, phone
from ivr.app import create_app
from ivr.cli.dev_support import (
    DEMO_ACCOUNTS,
    DEV_DIR,
    DevSession,
    StepFormatter,
    banner,
    dev_config_path,
    read_session,
    remove_session,
    seed_demo_accounts,
    uses_generated_token,
    write_session,
)
from ivr.cli.errors import fail
from ivr.config import Settings
from ivr.embedded_redis import running_redis
from ivr.exceptions import IVRError
from ivr.services import build
from ivr.tunnel import TunnelFactory, ngrok_tunnel
from ivr.twilio_number import ClientFactory, pointed_at, rest_client

__all__ = [
    "DEMO_ACCOUNTS",
    "DEV_DIR",
    "DevOptions",
    "DevSession",
    "dev",
    "read_session",
    "run_dev",
]

WORKER_ARGV = (sys.executable, "-c", "from ivr.cli import main; main()", "worker")
WORKER_STOP_S = 10.0
Echo = Callable[[str], None]
Wait = Callable[[DevSession], None]


@dataclass(frozen=True)
class DevOptions:
    config_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    ngrok: bool = False
    twilio_number: str | None = None
    worker: bool = True


def wait_for_interrupt(session: DevSession) -> None:
    """Block until Ctrl-C (or SIGTERM); later Ctrl-Cs cannot cut the clean-up short."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def check_twilio_number(options: DevOptions, settings: Settings) -> str | None:
    """The --twilio-number in E.164, after checking everything it needs (nothing changed yet)."""
    if options.twilio_number is None:
        return None
    number = phone.normalize(options.twilio_number, settings.server.default_region)
    if number is None or not options.twilio_number.strip().startswith("+"):
        raise IVRError(
            f"--twilio-number {options.twilio_number!r} is not a phone number in E.164 "
            "format: write it as in the Twilio console, e.g. +4930123456"
        )
    if not settings.twilio.account_sid.startswith("AC") or not settings.twilio.auth_token:
        raise IVRError(
            "--twilio-number needs your Twilio credentials: set [twilio] account_sid (AC…) and "
            "auth_token, or export TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if not options.ngrok and not settings.server.public_base_url:
        raise IVRError(
            "--twilio-number needs a URL Twilio can reach: add --ngrok, or set "
            "[server] public_base_url to your tunnel's or proxy's https URL"
        )
    return number


def start_worker(
    config_path: str, settings: Settings, *, owns_redis: bool = False
) -> subprocess.Popen[bytes]:
    """``ivr worker`` as a child process on this Redis (``owns_redis``: the embedded one)."""
    env = {**os.environ, "IVR_CONFIG": str(Path(config_path).resolve())}
    env["IVR_REDIS_URL"] = settings.redis.url
    if settings.server.public_base_url:
        env["IVR_SERVER_PUBLIC_BASE_URL"] = settings.server.public_base_url
    # Own session: Ctrl-C in the terminal reaches only `ivr dev`, which then stops the
    # worker with SIGTERM (RQ's warm shutdown) instead of the worker dying half-way. The
    # worker itself asks for SIGTERM should `ivr dev` die without that (ivr.orphans).
    argv: tuple[str, ...] = (*WORKER_ARGV, "--parent-pid", str(os.getpid()))
    if owns_redis:
        argv += ("--stop-redis-with-parent",)
    return subprocess.Popen(argv, env=env, start_new_session=True)  # noqa: S603


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=WORKER_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def listen(host: str, port: int) -> socket.socket:
    """The web app's socket, bound before anything starts so a busy port fails early."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise IVRError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "pass another --port, or stop what uses this one"
        ) from None
    return sock


def run_dev(
    options: DevOptions,
    echo: Echo,
    *,
    open_tunnel: TunnelFactory = ngrok_tunnel,
    twilio_client: ClientFactory = rest_client,
    wait: Wait = wait_for_interrupt,
) -> None:
    """Start everything, call ``wait``, then stop everything in reverse order.

    Whatever fails, everything started so far is stopped and a Twilio number that was
    pointed here is restored.
    """
    with ExitStack() as stack:
        config_path = dev_config_path(options.config_path)
        settings = config.load(config_path)
        number = check_twilio_number(options, settings)
        listener = stack.enter_context(listen(options.host, options.port))
        redis_note = f"Redis {settings.redis.url}"
        embedded = not settings.redis.url
        if embedded:
            # Should ivr dev die without cleaning up (ivr.orphans), Redis must outlive the
            # worker's warm shutdown: the worker stops it after itself. Without a worker,
            # Redis gets the parent-death signal (set now, while no other thread runs).
            redis_proc = stack.enter_context(running_redis(stop_with_parent=not options.worker))
            redis_note = f"embedded Redis on port {redis_proc.port}"
            settings = _replace(settings, "redis", url=redis_proc.url)
        if options.ngrok:
            tunnel = open_tunnel(options.port)
            stack.callback(tunnel.close)
            settings = _replace(settings, "server", public_base_url=tunnel.public_url)
        services = build(settings)
        stack.callback(services.close)
        seed_demo_accounts(services)
        app = create_app(settings, services)
        server = make_server(options.host, options.port, app, threaded=True, fd=listener.fileno())
        thread = threading.Thread(target=server.serve_forever, name="ivr-dev-http", daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(server.shutdown)
        if options.worker:
            stack.callback(stop_worker, start_worker(config_path, settings, owns_redis=embedded))
        host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host  # noqa: S104
        session = DevSession(
            f"http://{host}:{server.port}", settings.server.public_base_url, config_path,
            settings.redis.url,
        )  # fmt: skip
        write_session(session)
        stack.callback(remove_session)
        pointed = None
        if number is not None:
            client = twilio_client(settings.twilio.account_sid, settings.twilio.auth_token)
            pointed = stack.enter_context(
                pointed_at(
                    client, number, settings.server.public_base_url, lambda m: echo(f"warning: {m}")
                )
            )
        generated = uses_generated_token(config_path)
        echo(banner(settings, session, redis_note, pointed, generated))
        wait(session)
        echo("Stopping…" if pointed is None else f"Stopping; restoring {pointed.phone_number}…")


def _replace(settings: Settings, section: str, **values: str) -> Settings:
    return dataclasses.replace(
        settings, **{section: dataclasses.replace(getattr(settings, section), **values)}
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP end `ivr dev` like Ctrl-C does, so everything is cleaned up.
    raise KeyboardInterrupt


def _live_logs() -> None:
    """One readable line per call step; werkzeug's request lines would only repeat them."""
    handler = logging.StreamHandler()
    handler.setFormatter(StepFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@click.command()
@click.option("--port", default=5000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--ngrok", is_flag=True, help="Open an ngrok tunnel and use its https URL.")
@click.option(
    "--twilio-number",
    metavar="+49…",
    help="Point this Twilio number's webhooks here (REST API); restored on exit.",
)
@click.option("--no-worker", is_flag=True, help="Do not start `ivr worker`.")
@click.pass_obj
def dev(
    config_path: str | None,
    port: int,
    host: str,
    ngrok: bool,
    twilio_number: str | None,
    no_worker: bool,
) -> None:
    """Run the service locally: embedded Redis, worker, demo accounts, live call log."""
    _live_logs()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    options = DevOptions(config_path, host, port, ngrok, twilio_number, not no_worker)
    try:
        run_dev(options, click.echo)
    except (IVRError, OSError, RuntimeError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass  # interrupted while starting: everything started was stopped already
