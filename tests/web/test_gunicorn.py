"""The documented production command serves the app, and parallel calls stay race-free.

``gunicorn "ivr:create_app()"`` with IVR_CONFIG runs as a real server; 20 calls enter a
wrong PIN for the same account at the same moment, and exactly account_max_failures of
them are evaluated — the rest are refused as locked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis

from ivr import config
from ivr.services import build
from tests.conftest import AUTH_TOKEN, PEPPER, WORKFLOW_SID, seed
from tests.redis_server import free_port
from tests.twilio_phone import sign

PARALLEL = 20
MAX_FAILURES = 5
API_TOKEN = "gunicorn-test-api-token-0123456789"
WEBHOOK_COUNT = "ivr_webhook_duration_seconds_count"


@pytest.fixture
def server(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[str]:
    """gunicorn serving ivr:create_app() from a config file; yields its base URL."""
    port = free_port()
    db = tmp_path / "pins.sqlite3"
    config_file = tmp_path / "ivr.toml"
    config_file.write_text(
        f"""
[server]
public_base_url = "http://127.0.0.1:{port}"
[twilio]
auth_token = "{AUTH_TOKEN}"
[redis]
url = "{redis_url}"
[pin_store]
url = "sqlite:///{db}"
[lockout]
account_max_failures = {MAX_FAILURES}
[routing]
mode = "enqueue"
workflow_sid = "{WORKFLOW_SID}"
""",
        encoding="utf-8",
    )
    env = {**os.environ, "IVR_CONFIG": str(config_file), "IVR_PIN_PEPPER": PEPPER,
           "IVR_API_TOKEN": API_TOKEN}  # fmt: skip
    services = build(config.load(config_file, env=env))
    # Metrics shared by the two workers (prometheus-client's multiprocess mode).
    (tmp_path / "metrics").mkdir()
    env.update({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    seed(services)
    services.close()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = tmp_path / "gunicorn.log"
    proc = subprocess.Popen(
        [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8",
         "--error-logfile", str(log), "ivr:create_app()"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited: " + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1):
                return
        except OSError:  # refused, reset or timed out while gunicorn loads the app
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not become ready")


def post(base: str, path: str, params: dict[str, str]) -> ET.Element:
    """POST signed like Twilio; returns the parsed TwiML."""
    body = urlencode(params).encode()
    request = urllib.request.Request(
        base + path,
        data=body,
        headers={"X-Twilio-Signature": sign(AUTH_TOKEN, base + path, params)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return ET.fromstring(response.read())


def call_up_to_pin(base: str, index: int) -> tuple[str, dict[str, str]]:
    """A call from its own number that has chosen a topic and typed customer number 200001."""
    params = {"CallSid": f"CA{index:032x}", "From": f"+49301234{index:04d}"}
    twiml = post(base, "/voice", params)
    for digits in ("1", "200001#"):
        gather = twiml.find("Gather")
        assert gather is not None
        twiml = post(base, gather.get("action", ""), {**params, "Digits": digits})
    gather = twiml.find("Gather")
    assert gather is not None and gather.get("numDigits") == "6"
    return gather.get("action", ""), params


def test_gunicorn_serves_health_and_calls(server: str) -> None:
    """The production WSGI entry point answers health checks and signed calls."""
    with urllib.request.urlopen(server + "/healthz", timeout=2) as response:
        assert response.status == 200
    twiml = post(server, "/voice", {"CallSid": "CA" + "f" * 32, "From": "+4930111111"})
    assert twiml.find("Gather") is not None


def test_parallel_wrong_pins_evaluate_exactly_the_limit(server: str) -> None:
    """20 simultaneous wrong PINs on one account: exactly account_max_failures are judged
    wrong (and may retry); every other call is told the account is locked."""
    prepared = [call_up_to_pin(server, i) for i in range(PARALLEL)]

    def submit(item: tuple[str, dict[str, str]]) -> ET.Element:
        action, params = item
        return post(server, action, {**params, "Digits": "000000"})

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(pool.map(submit, prepared))
    retried = [a for a in answers if a.find("Gather") is not None]
    locked = [a for a in answers if a.find("Enqueue") is not None]
    assert len(retried) == MAX_FAILURES
    assert len(locked) == PARALLEL - MAX_FAILURES
    for answer in locked:
        assert '"reason":"locked"' in (answer.findtext("Enqueue/Task") or "")


def scrape(base: str) -> dict[str, float]:
    """``GET /metrics``: sample name with labels -> value."""
    request = urllib.request.Request(
        base + "/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


def test_metrics_add_up_over_worker_processes(server: str, tmp_path: Path) -> None:
    """Every scrape reports the calls of both gunicorn workers, whichever one answers."""
    started = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have timed a webhook (each then has a histogram file).
        while len(list((tmp_path / "metrics").glob("histogram_*.db"))) < 2:
            # The accept() race usually splits within 100 calls; once it took 192.
            assert started < 1600, "one worker served every call"
            batch = range(started, started + 16)
            params = [{"CallSid": f"CA{9000 + i:032x}", "From": "+4930901820"} for i in batch]
            list(pool.map(lambda p: post(server, "/voice", p), params))
            started += 16
    for _ in range(6):
        samples = scrape(server)
        timed = [v for k, v in samples.items() if k.startswith(WEBHOOK_COUNT)]
        assert sum(timed) == started
        assert samples["ivr_redis_up"] == 1.0  # the live gauges are still there, once
