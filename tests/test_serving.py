"""The production worker (ivr.serving.ThreadWorker) under a real gunicorn: each request's
environ says when the server queued it, so its wait before the app counts."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.fleet.web_nodes import DIRECT, WebNode
from tests.serving_app import SLOW_S


def waited(node: WebNode, path: str) -> Any:
    """The app's ``waited`` for ``GET path``."""
    with DIRECT.open(node.url + path, timeout=5) as answer:
        return json.loads(answer.read())["waited"]


def test_a_request_queued_behind_a_busy_thread_shows_its_wait() -> None:
    """On one worker thread, a request sent while another holds it for 0.5 s reaches
    the app with its queue time showing the wait; an idle server shows next to none."""
    with WebNode({}, workers=1, threads=1, app="tests.serving_app:app") as node:
        assert 0 <= waited(node, "/idle") < 0.05
        slow = threading.Thread(target=waited, args=(node, "/slow"))
        slow.start()
        time.sleep(0.1)
        behind = waited(node, "/behind")
        slow.join()
    assert SLOW_S - 0.2 < behind < SLOW_S + 0.2
