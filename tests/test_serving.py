"""The production worker (ivr.serving.ThreadWorker) under a real gunicorn: each request's
environ says when the server queued it, so its wait before the app counts."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ivr.serving import FILES_BESIDE_CONNECTIONS, allow_files, connections_within
from tests.fleet.ports import free_port
from tests.fleet.web_nodes import DIRECT, WebNode, group_members
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


def soft_file_limit(pid: int) -> int:
    """The soft "Max open files" of process ``pid``, from /proc."""
    for line in Path(f"/proc/{pid}/limits").read_text(encoding="ascii").splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open-file limit for {pid}")


def test_a_worker_raises_its_open_file_limit_for_its_connections() -> None:
    """Started under a soft open-file limit of 512, each worker raises it to its
    --worker-connections (gunicorn's default 1,000) plus the app's own descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        node = WebNode({}, workers=1, threads=1, app="tests.serving_app:app")
        node.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert node.proc is not None
        master = node.proc.pid
        workers = [pid for pid in group_members(master) if pid != master]
        assert workers and soft_file_limit(master) == 512
        assert [soft_file_limit(pid) for pid in workers] == [1000 + FILES_BESIDE_CONNECTIONS]
    finally:
        node.stop()


@pytest.mark.parametrize(
    ("soft", "wanted", "expected"),
    [(256, 1024, 1024), (2048, 1024, 2048)],
)
def test_allow_files_raises_the_soft_limit_and_never_lowers_it(
    soft: int, wanted: int, expected: int
) -> None:
    """allow_files raises the soft open-file limit to what is asked, never lowers it."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        assert allow_files(wanted) == expected
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


@pytest.mark.parametrize(
    ("files", "wanted", "expected"),
    [(20_000, 10_000, 10_000), (1_024, 10_000, 1_024 - FILES_BESIDE_CONNECTIONS), (100, 1_000, 8)],
)
def test_a_worker_takes_only_the_connections_its_file_limit_has_room_for(
    files: int, wanted: int, expected: int
) -> None:
    """Under a hard open-file limit below --worker-connections, a worker takes only as
    many connections as leave its own descriptors room (an accept failing with EMFILE
    would end the worker), and never fewer than its threads."""
    assert connections_within(files, wanted, threads=8) == expected


def test_a_worker_under_a_low_hard_file_limit_survives_more_connections(tmp_path: Path) -> None:
    """Under a hard open-file limit of 600, 900 connections at once leave the worker
    alive and answering (it takes 344 and leaves the rest in the backlog, with a
    warning), where an accept failing with EMFILE would have ended it."""
    port, log = free_port(), tmp_path / "gunicorn.log"
    argv = [str(Path(sys.executable).with_name("gunicorn")), "--worker-class",
            "ivr.serving.ThreadWorker", "--workers", "1", "--threads", "2", "--bind",
            f"127.0.0.1:{port}", "--error-logfile", str(log), "tests.serving_app:app"]  # fmt: skip

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (600, 600))

    proc = subprocess.Popen(argv, preexec_fn=limited, start_new_session=True)  # noqa: S603, PLW1509
    held: list[socket.socket] = []
    try:
        node = WebNode({}, port)
        deadline = time.monotonic() + 10
        while "Booting worker" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        assert waited(node, "/idle") is not None
        worker = [pid for pid in group_members(proc.pid) if pid != proc.pid]
        held = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(900)]
        time.sleep(1.5)  # the worker accepts what it may
        for conn in held:
            conn.close()
        assert waited(node, "/idle") is not None
        assert [pid for pid in group_members(proc.pid) if pid != proc.pid] == worker
        assert "allows 344 connections per worker" in log.read_text()
    finally:
        for conn in held:
            conn.close()
        proc.terminate()
        proc.wait(timeout=10)
