"""A WSGI app for tests of the production worker (ivr.serving): it tells how long the
request waited in the server's queue before the app saw it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from ivr.deadline import QUEUED_AT

SLOW_S = 0.5


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/slow`` holds its thread for SLOW_S; every answer is ``{"waited": seconds}``
    (null when the server set no queue time)."""
    seen = time.monotonic()
    if environ["PATH_INFO"] == "/slow":
        time.sleep(SLOW_S)
    queued = environ.get(QUEUED_AT)
    body = json.dumps({"waited": None if queued is None else seen - queued}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
