"""Calls over real HTTP to several web nodes, signed like Twilio's, every webhook timed."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from werkzeug.wrappers import Response

# Twilio's own limit: a webhook slower than this is a failed call.
TWILIO_TIMEOUT_S = 15.0
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Hit:
    """One webhook as Twilio saw it: which node, how long, what status (0: no answer)."""

    path: str
    node: int
    seconds: float
    status: int
    at: float


@dataclass
class Webhooks:
    """Every webhook sent by the posters sharing it (thread-safe)."""

    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def slowest(self) -> float:
        """The longest answer time so far (0 when none)."""
        with self.lock:
            return max((h.seconds for h in self.hits), default=0.0)


@dataclass
class HttpPoster:
    """Posts each request to one of ``urls``: ``pick(n)`` chooses for the n-th request
    (default: alternate, so consecutive webhooks of a call land on different nodes)."""

    urls: Sequence[str]
    log: Webhooks
    pick: Callable[[int], int] | None = None
    sent: int = 0

    def post(self, path: str, *, data: dict[str, str], headers: dict[str, str]) -> Response:
        index = self.pick(self.sent) if self.pick else self.sent % len(self.urls)
        self.sent += 1
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            self.urls[index] + path, data=urlencode(data).encode(), headers=headers,
            method="POST",
        )  # fmt: skip
        started = time.monotonic()
        status, body, kind = 0, b"", "text/plain"
        try:
            with DIRECT.open(request, timeout=TWILIO_TIMEOUT_S) as answer:
                status, body = answer.status, answer.read()
                kind = answer.headers.get("Content-Type", kind)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
            exc.close()
        except OSError:  # refused, reset, timed out: Twilio would play its error
            pass
        finally:
            self.log.add(Hit(path.split("?")[0], index, time.monotonic() - started, status,
                             time.monotonic()))  # fmt: skip
        return Response(body, status=status or 599, content_type=kind)
