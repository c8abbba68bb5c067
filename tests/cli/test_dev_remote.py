"""``ivr dev --ngrok --twilio-number``: the tunnel's URL, and a number pointed and restored.

The Twilio REST API is a local HTTP server here (the real twilio Client talks to it
through an HTTP client that rewrites api.twilio.com), the tunnel an injected factory;
nothing reaches the internet.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ivr.cli.dev import DevOptions, DevSession, run_dev
from ivr.cli.dev_support import DEMO_ACCOUNTS, SESSION_FILE
from ivr.phone_sim import CallerId, Endpoint, Outcome, ScriptedKeypad, TerminalPhone, Transport
from ivr.tunnel import Tunnel, TunnelError, ngrok_tunnel
from ivr.twilio_number import TwilioNumberError
from tests.redis_server import free_port

SID = "AC" + "1" * 32
TOKEN = "real-looking-auth-token-0123456789"
NUMBER = "+4930123456"
TUNNEL = "https://dev-tunnel.example"
BEFORE = {
    "voice_url": "https://old.example/voice",
    "voice_method": "GET",
    "status_callback": "",
    "status_callback_method": "POST",
    "voice_fallback_url": "https://old.example/fallback",
    "voice_fallback_method": "POST",
    "voice_application_sid": "AP" + "2" * 32,
}
FIELDS = {
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "VoiceApplicationSid": "voice_application_sid",
}


@dataclass
class FakeTwilio:
    """A stand-in for api.twilio.com's IncomingPhoneNumbers resource."""

    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: list[dict[str, str]] = field(default_factory=list)
    updates_fail_after: int | None = None
    base: str = ""

    def handle(self, method: str, url: str, auth: str, body: str) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if auth != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        path, query = urlsplit(url).path, parse_qs(urlsplit(url).query)
        prefix = f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers"
        if method == "GET" and path == prefix + ".json":
            wanted = query.get("PhoneNumber", [""])[0]
            # Like Twilio, the filter matches partial numbers too.
            found = [n for n in self.numbers.values() if wanted.lstrip("+") in n["phone_number"]]
            return 200, {"incoming_phone_numbers": found, "next_page_uri": None, "page": 0}
        sid = path.removeprefix(prefix + "/").removesuffix(".json")
        number = next((n for n in self.numbers.values() if n["sid"] == sid), None)
        if method == "POST" and number is not None:
            if self.updates_fail_after is not None and len(self.updates) >= self.updates_fail_after:
                return 500, {"code": 20500, "message": "Internal error", "status": 500}
            form = {k: v[0] if v else "" for k, v in parse_qs(body, keep_blank_values=True).items()}
            self.updates.append(form)
            number.update({FIELDS[k]: v for k, v in form.items() if k in FIELDS})
            return 200, number
        return 404, {"code": 20404, "message": "Not found", "status": 404}


@pytest.fixture
def api() -> Iterator[FakeTwilio]:
    """The fake REST API on a free port, owning NUMBER with BEFORE's settings."""
    fake = FakeTwilio({NUMBER: {"sid": "PN" + "3" * 32, "phone_number": NUMBER, **BEFORE}})

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            status, payload = fake.handle(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_port}"
    yield fake
    server.shutdown()
    thread.join()
    server.server_close()


class LocalApi(TwilioHttpClient):  # type: ignore[misc]
    """Sends the Twilio client's requests to the local stand-in instead of api.twilio.com."""

    def __init__(self, base: str) -> None:
        super().__init__(timeout=5)
        self.base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        local = url.replace("https://api.twilio.com", self.base)
        return super().request(method, local, *args, **kwargs)


def clients(api: FakeTwilio) -> Any:
    return lambda sid, token: Client(sid, token, http_client=LocalApi(api.base))


@dataclass
class FakeTunnel:
    """Stands in for ngrok: a fixed public URL, and whether it was closed."""

    ports: list[int] = field(default_factory=list)
    closed: bool = False

    def __call__(self, port: int) -> Tunnel:
        self.ports.append(port)
        return Tunnel(TUNNEL, self.close)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def conf(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A dev config with Twilio credentials, on the run's Redis, in an empty directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "dev.toml"
    path.write_text(
        f'[twilio]\naccount_sid = "{SID}"\nauth_token = "{TOKEN}"\n'
        f'[redis]\nurl = "{redis_url}"\n'
        f'[pin_store]\nurl = "sqlite:///{tmp_path / "pins.db"}"\npepper = "{"p" * 32}"\n'
        '[routing]\nnumber = "+4930901820"\n'
        f'[api]\ntoken = "{"a" * 32}"\n'
    )
    return str(path)


def options(conf: str, **changes: Any) -> DevOptions:
    values: dict[str, Any] = {"port": free_port(), "ngrok": True, "twilio_number": NUMBER}
    return DevOptions(config_path=conf, worker=False, **{**values, **changes})


def demo_call(session: DevSession) -> Outcome:
    """A call signed over the public (tunnel) URL but sent to the local server."""
    transport = Transport(Endpoint(session.url, session.public_base_url), TOKEN)
    keys = ScriptedKeypad(["1", DEMO_ACCOUNTS[0][3]])
    caller = CallerId(DEMO_ACCOUNTS[0][2][0])
    return TerminalPhone(transport, keys, lambda line: None, caller, "a" * 32).call().outcome


def test_number_points_at_the_tunnel_and_is_restored(api: FakeTwilio, conf: str) -> None:
    """While dev runs, the number's three webhooks are the tunnel's; afterwards the old ones."""
    lines: list[str] = []
    tunnel = FakeTunnel()
    during: dict[str, Any] = {}

    def wait(session: DevSession) -> None:
        during.update(api.numbers[NUMBER], session=session, outcome=demo_call(session))
        during["session_file"] = SESSION_FILE.exists()

    opts = options(conf)
    run_dev(opts, lines.append, open_tunnel=tunnel, twilio_client=clients(api), wait=wait)
    assert during["voice_url"] == f"{TUNNEL}/voice" and during["voice_method"] == "POST"
    assert during["status_callback"] == f"{TUNNEL}/voice/status"
    assert during["voice_fallback_url"] == f"{TUNNEL}/voice/fallback"
    assert during["voice_application_sid"] == ""  # a TwiML App would win over the URL
    assert during["session"].public_base_url == TUNNEL and during["session_file"]
    assert during["outcome"] is Outcome.IDENTIFIED  # signatures validate over the tunnel URL
    assert {k: api.numbers[NUMBER][k] for k in BEFORE} == BEFORE
    assert tunnel.ports == [opts.port] and tunnel.closed
    assert not SESSION_FILE.exists()
    text = "\n".join(lines)
    assert f"Public URL (signatures are validated against it): {TUNNEL}" in text
    assert f"Twilio number {NUMBER} now points here" in text and "was https://old" in text


def test_ctrl_c_restores_the_number(api: FakeTwilio, conf: str) -> None:
    """Ctrl-C (KeyboardInterrupt) while running still restores the number and the tunnel."""
    tunnel = FakeTunnel()

    def interrupted(session: DevSession) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_dev(
            options(conf), print, open_tunnel=tunnel, twilio_client=clients(api), wait=interrupted
        )
    assert {k: api.numbers[NUMBER][k] for k in BEFORE} == BEFORE
    assert len(api.updates) == 2 and tunnel.closed


@pytest.mark.parametrize("number", ["+4930123", "+4930999999"])
def test_number_not_owned_changes_nothing(api: FakeTwilio, conf: str, number: str) -> None:
    """A number the account does not own (even a partial match) fails before any change."""
    tunnel = FakeTunnel()
    opts = options(conf, twilio_number=number)
    with pytest.raises(TwilioNumberError, match="does not own"):
        run_dev(opts, print, open_tunnel=tunnel, twilio_client=clients(api), wait=print)
    assert api.updates == [] and tunnel.closed and not SESSION_FILE.exists()
    with __import__("socket").socket() as sock:  # the web server was shut down too
        sock.bind(("127.0.0.1", opts.port))


def test_wrong_credentials_name_the_fix(api: FakeTwilio, conf: str) -> None:
    """Twilio answering 401 is reported as a credentials problem; nothing is changed."""
    bad = Path(conf).read_text().replace(TOKEN, "wrong-token-0123456789")
    Path(conf).write_text(bad)
    with pytest.raises(TwilioNumberError, match=r"credentials.*account_sid and auth_token"):
        run_dev(options(conf), print, open_tunnel=FakeTunnel(), twilio_client=clients(api))
    assert api.updates == []


def test_failed_restore_prints_the_old_values(api: FakeTwilio, conf: str) -> None:
    """If restoring fails, a warning line says what to set back by hand."""
    api.updates_fail_after = 1
    lines: list[str] = []
    run_dev(
        options(conf),
        lines.append,
        open_tunnel=FakeTunnel(),
        twilio_client=clients(api),
        wait=print,
    )
    warning = [line for line in lines if line.startswith("warning: could not restore")]
    assert len(warning) == 1 and "https://old.example/voice" in warning[0]


def test_tunnel_failure_stops_everything(conf: str) -> None:
    """A tunnel that cannot open is an error; nothing keeps running."""

    def broken(port: int) -> Tunnel:
        raise TunnelError("ngrok could not open a tunnel")

    opts = options(conf, twilio_number=None)
    with pytest.raises(TunnelError):
        run_dev(opts, print, open_tunnel=broken, wait=print)
    assert not SESSION_FILE.exists()


def test_ngrok_process_failure_is_one_message(tmp_path: Path) -> None:
    """pyngrok with an ngrok that fails to start gives one line naming the authtoken fix."""
    from pyngrok.conf import PyngrokConfig

    fake = tmp_path / "ngrok"
    fake.write_text('#!/bin/sh\necho \'lvl=eror msg="x" err="authentication failed"\'\nexit 1\n')
    fake.chmod(0o755)
    config = PyngrokConfig(ngrok_path=str(fake), config_path=str(tmp_path / "ngrok.yml"))
    with pytest.raises(TunnelError, match="add-authtoken") as caught:
        ngrok_tunnel(free_port(), config)
    assert "\n" not in str(caught.value)


def run_cli(
    tmp_path: Path, *args: str, prelude: str = "", **extra_env: str
) -> subprocess.CompletedProcess[str]:
    code = f"{prelude}from ivr.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", code, "dev", "--port", str(free_port()), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--twilio-number", NUMBER, "--ngrok"], "TWILIO_ACCOUNT_SID"),
        (["--twilio-number", "030 123456", "--ngrok"], "E.164"),
        (["--twilio-number", NUMBER], "add --ngrok"),
    ],
    ids=["no-credentials", "not-e164", "no-public-url"],
)
def test_bad_twilio_number_use_is_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    """Missing credentials, a malformed number or no public URL: one line, before any start."""
    credentials = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
    result = run_cli(tmp_path, *args, **(credentials if needle == "add --ngrok" else {}))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert "running on" not in result.stdout


def test_ngrok_not_installed_is_one_line(tmp_path: Path) -> None:
    """Without pyngrok, --ngrok names the extra to install and leaves nothing running."""
    result = run_cli(tmp_path, "--ngrok", prelude="import sys; sys.modules['pyngrok'] = None; ")
    assert result.returncode == 1
    assert result.stderr == (
        "error: --ngrok needs pyngrok, which is not installed: "
        "pip install 'service-pin-ivr[ngrok]'\n"
    )
    assert not (tmp_path / ".ivr-dev" / "session.json").exists()
