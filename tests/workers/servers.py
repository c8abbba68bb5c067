"""Local HTTP endpoints for the worker tests: a CRM receiver and a stand-in Twilio API.

Both are real HTTP servers on 127.0.0.1 in a thread. They record every request and
answer from a script (status, body, delay), so tests can make the far end slow or
failing. The Twilio REST client is pointed at the local server by an HTTP client that
rewrites ``https://api.twilio.com`` — the real twilio library builds and sends the request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from ivr.config import Settings

TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b"{}"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The body as a form (Twilio posts forms), one value per field."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class Recorder:
    """Scripted replies (the last one repeats) and the requests that came in."""

    replies: list[Reply] = field(default_factory=lambda: [Reply()])
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@dataclass
class LocalServer:
    """A running server: its base URL and its recorder."""

    url: str
    recorder: Recorder

    @property
    def requests(self) -> list[Recorded]:
        return self.recorder.requests

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` (the last one then repeats)."""
        self.recorder.replies[:] = list(replies)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            recorded = Recorded("POST", self.path, dict(self.headers.items()), body)
            reply = recorder.next_reply(recorded)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@contextmanager
def local_server() -> Iterator[LocalServer]:
    """A recording HTTP server on a free port, stopped afterwards."""
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True
    # A short poll interval keeps shutdown() (run after every test) quick.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-http", daemon=True
    )
    thread.start()
    try:
        yield LocalServer(f"http://127.0.0.1:{server.server_port}", recorder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class LocalTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The twilio library's own HTTP client, sending to a local server instead."""

    def __init__(self, base_url: str, timeout_s: float = 2.0) -> None:
        super().__init__(timeout=timeout_s)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        assert url.startswith(TWILIO_API), url
        return super().request(method, self.base_url + url[len(TWILIO_API) :], *args, **kwargs)


def twilio_factory(base_url: str, timeout_s: float = 2.0) -> Any:
    """A TwilioFactory whose clients talk to ``base_url``."""

    def build(settings: Settings) -> Client:
        http = LocalTwilioHttpClient(base_url, timeout_s)
        return Client(settings.twilio.account_sid, settings.twilio.auth_token, http_client=http)

    return build


def message_json(sid: str = "SM" + "0" * 32) -> bytes:
    """What Twilio answers to a created message (the fields the client reads)."""
    return json.dumps({"sid": sid, "status": "queued"}).encode()
