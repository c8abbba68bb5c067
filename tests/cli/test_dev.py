"""``ivr dev`` runs the whole service from nothing and shuts everything down on Ctrl-C."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ivr.calls import STEP_MESSAGE
from ivr.cli.dev_support import StepFormatter
from tests.redis_server import free_port
from tests.twilio_phone import sign


@dataclass
class DevServer:
    proc: subprocess.Popen[str]
    base: str
    cwd: Path
    output: str = ""

    def auth_token(self) -> str:
        conf = tomllib.loads((self.cwd / ".ivr-dev" / "config.toml").read_text())
        return str(conf["twilio"]["auth_token"])

    def post(self, path: str, params: dict[str, str]) -> ET.Element:
        url = self.base + path
        request = urllib.request.Request(
            url,
            data=urlencode(params).encode(),
            headers={"X-Twilio-Signature": sign(self.auth_token(), url, params)},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return ET.fromstring(response.read())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=15)
        self.output += out
        return self.proc.returncode


def start_dev(cwd: Path) -> DevServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    ivr = Path(sys.executable).with_name("ivr")
    proc = subprocess.Popen(
        [str(ivr), "dev", "--port", str(port)],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = DevServer(proc, f"http://127.0.0.1:{port}", cwd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.communicate()[0])
        try:
            with urllib.request.urlopen(server.base + "/readyz", timeout=1):
                return server
        except OSError:  # refused, or accepted but not answered yet: not ready
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("ivr dev did not become ready: " + server.output)


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    """`ivr dev` started in an empty directory with no configuration at all."""
    server = start_dev(tmp_path)
    yield server
    if server.proc.poll() is None:
        server.stop()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_dev_identifies_a_demo_caller_and_cleans_up(dev_server: DevServer) -> None:
    """From an empty directory `ivr dev` serves a signed call through to an identified
    route with a demo account, and Ctrl-C stops the app and its embedded Redis."""
    params = {"CallSid": "CA" + "d" * 32, "From": "+4930901820"}
    twiml = dev_server.post("/voice", params)
    for digits in ("1", "246810"):
        gather = twiml.find("Gather")
        assert gather is not None
        twiml = dev_server.post(gather.get("action", ""), {**params, "Digits": digits})
    assert '"identified":true' in (twiml.findtext("Enqueue/Task") or "") or (
        twiml.find("Dial") is not None
    )
    assert dev_server.stop() == 0
    output = dev_server.output
    match = re.search(r"embedded Redis on port (\d+)", output)
    assert match, output
    assert not port_open(int(match.group(1)))
    assert "246810" in output and "/voice/fallback" in output
    assert "Traceback" not in output
    # Live log: one readable line per step, and the PIN only ever in the demo banner.
    sid = params["CallSid"]
    assert f"call {sid}  new call -> menu" in output
    assert f"call {sid}  pin -> verified: to an agent, IDENTIFIED (reason verified" in output
    assert output.count("246810") == 2  # the banner's table and its `ivr call` example
    assert "POST /voice" not in output  # request lines would only repeat the steps


def test_dev_reuses_its_config_between_runs(tmp_path: Path) -> None:
    """A second `ivr dev` keeps the generated secrets, so demo PINs still verify."""
    first = start_dev(tmp_path)
    token = first.auth_token()
    assert first.stop() == 0
    second = start_dev(tmp_path)
    try:
        assert second.auth_token() == token
        root = second.post("/voice", {"CallSid": "CA" + "e" * 32, "From": "+4930901820"})
        assert root.find("Gather") is not None
    finally:
        assert second.stop() == 0


def test_dev_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    """A broken config file is one error line and a non-zero exit, no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[routing]\nmode = 'fax'\n")
    ivr = Path(sys.executable).with_name("ivr")
    result = subprocess.run(
        [str(ivr), "--config", str(bad), "dev", "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and "[" in result.stderr
    assert "Traceback" not in result.stderr


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, command line) of every live process (Linux /proc;
    zombies, dead but not yet reaped, are left out)."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[3]), cmdline)
    return table


def children(parent: int, command_part: str) -> list[int]:
    """PIDs of ``parent``'s children whose command line contains ``command_part``."""
    return [pid for pid, (ppid, _, cmd) in process_table().items()
            if ppid == parent and command_part in cmd]  # fmt: skip


def worker_of(dev_server: DevServer) -> list[int]:
    """The `ivr worker` child of a running `ivr dev`, once it has started."""
    deadline = time.monotonic() + 20
    workers: list[int] = []
    while not workers and time.monotonic() < deadline:
        workers = children(dev_server.proc.pid, " worker ")
        time.sleep(0.1)
    return workers


def test_dev_runs_the_worker_and_stops_it(dev_server: DevServer) -> None:
    """`ivr dev` starts `ivr worker` as a child; Ctrl-C stops it and everything it forked."""
    workers = worker_of(dev_server)
    assert len(workers) == 1, dev_server.output
    assert dev_server.stop() == 0
    left = [cmd for pid, (_, sid, cmd) in process_table().items() if workers[0] in (pid, sid)]
    assert left == [], left


def test_killed_dev_leaves_no_worker_or_redis_behind(dev_server: DevServer) -> None:
    """A SIGKILLed `ivr dev` runs no cleanup, yet its worker and then its Redis stop cleanly."""
    workers = worker_of(dev_server)
    redis_servers = children(dev_server.proc.pid, "redis-server")
    assert len(workers) == 1 and len(redis_servers) == 1, dev_server.output
    deadline = time.monotonic() + 20
    while not children(workers[0], " worker ") and time.monotonic() < deadline:
        time.sleep(0.1)  # until RQ's scheduler (a child of the worker) runs as well
    dev_server.proc.kill()
    dev_server.proc.wait(timeout=5)
    deadline = time.monotonic() + 20
    left = workers + redis_servers
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        table = process_table()
        left = [pid for pid in left if pid in table]
    for pid in left:  # do not leak them into the rest of the run, then fail
        os.kill(pid, signal.SIGKILL)
    assert dev_server.proc.stdout is not None
    with dev_server.proc.stdout:  # the worker wrote here too; everyone has stopped now
        output = dev_server.proc.stdout.read()
    assert left == [], "children outlived a killed `ivr dev`"
    # Redis outlived the worker's warm shutdown: nothing failed on the way out.
    assert "Traceback" not in output and "ConnectionError" not in output, output[-3000:]


def test_step_formatter_uses_only_the_step_fields() -> None:
    """A step record becomes one readable line; any other record keeps the usual format."""
    sid = "CA" + "0" * 32
    args = (sid, "pin", "wrong_pin", True, False, "wrong_pin", 3)
    record = logging.LogRecord("ivr.calls", logging.INFO, __file__, 1, STEP_MESSAGE, args, None)
    line = StepFormatter().format(record)
    assert line.endswith(
        f"call {sid}  pin -> wrong_pin: to an agent, not identified (reason wrong_pin, "
        "PIN attempts 3)"
    )
    other = logging.LogRecord("ivr.web", logging.WARNING, __file__, 1, "rejected %s", ("/v",), None)
    assert StepFormatter().format(other).endswith("WARNING ivr.web: rejected /v")


def test_dev_port_in_use_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """A busy port is one error line naming --port; the embedded Redis is stopped again."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
        ivr = Path(sys.executable).with_name("ivr")
        result = subprocess.run(
            [str(ivr), "dev", "--port", str(port), "--no-worker"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert result.stderr.count("\n") == 1 and "--port" in result.stderr
    assert not (tmp_path / ".ivr-dev" / "session.json").exists()
