"""Console event streams never starve Twilio's webhooks under the production server.

Bound proved: with 50 ``/agent/events`` streams asked for at once (10 console sessions
of 5 agents, five each) on gunicorn with the documented 2 workers x 8 threads, every
``/voice`` webhook sent while they are open answers in under 100 ms; what the streams
beyond the bounds lose is only their liveness until the browser retries (10 s).
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from werkzeug.security import generate_password_hash

from ivr import config
from ivr.services import build
from tests.conftest import AUTH_TOKEN, PEPPER, SINGLE_OWNER, seed
from tests.fleet.fleet import write_config
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.fleet.ports import free_port
from tests.fleet.redis_nodes import tail
from tests.fleet.web_nodes import WebNode
from tests.measured import report
from tests.twilio_phone import Call

AGENTS = {f"agent{i}": f"agent{i}-secret-pw" for i in range(5)}
SESSIONS_PER_AGENT = 2
STREAMS_PER_SESSION = 5
WEBHOOKS = 20
BOUND_S = 0.100
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_config(path: Path) -> None:
    """The console section: five agents (cheap hashes), the default stream bounds."""
    hashes = "\n".join(
        f'{name} = "{generate_password_hash(pw, method="pbkdf2:sha256:1000")}"'
        for name, pw in AGENTS.items()
    )
    with path.open("a", encoding="utf-8") as out:
        out.write(f'[console]\nsecret_key = "{"s" * 40}"\n[console.agents]\n{hashes}\n')


def logged_in(base: str, name: str) -> requests.Session:
    """A browser session of agent ``name``."""
    browser = requests.Session()
    browser.trust_env = False  # loopback only, never a proxy from the environment
    token = CSRF.search(browser.get(f"{base}/agent/login", timeout=5).text)
    assert token is not None
    answer = browser.post(f"{base}/agent/login", timeout=5, allow_redirects=False, data={
        "csrf_token": token.group(1), "username": name, "password": AGENTS[name],
    })  # fmt: skip
    assert answer.status_code == 303, answer.text
    return browser


def open_stream(browser: requests.Session, base: str) -> requests.Response | None:
    """An event stream, its headers read and its body left open (None: no answer)."""
    try:
        return browser.get(f"{base}/agent/events", stream=True, timeout=5)
    except requests.RequestException:
        return None


def test_fifty_console_streams_leave_the_webhooks_their_threads(
    redis_url: str, tmp_path: Path
) -> None:
    """50 streams asked for at once hold at most max_streams threads per process, and
    20 webhooks sent meanwhile each answer in under 100 ms."""
    path = tmp_path / "ivr.toml"
    write_config(path, redis_url, "", f"sqlite:///{tmp_path / 'pins.sqlite3'}")
    console_config(path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"  # plain http: the console cookie is then not Secure
    env = {"IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER,
           "IVR_REDIS_KEY_PREFIX": f"sse{uuid.uuid4().hex[:8]}",
           "IVR_SERVER_PUBLIC_BASE_URL": base}  # fmt: skip
    services = build(config.load(path, env=env))
    try:
        seed(services)
    finally:
        services.close()
    with WebNode(env, port) as node:
        browsers = [logged_in(node.url, name) for name in AGENTS for _ in range(SESSIONS_PER_AGENT)]
        wanted = [b for b in browsers for _ in range(STREAMS_PER_SESSION)]
        with ThreadPoolExecutor(len(wanted)) as pool:
            streams = list(pool.map(lambda b: open_stream(b, node.url), wanted))
        try:
            hits = Webhooks()
            for _ in range(WEBHOOKS):
                Call(HttpPoster([node.url], hits), AUTH_TOKEN, SINGLE_OWNER, base=base).start()
            seconds = sorted(hit.seconds for hit in hits.hits)
        finally:
            for stream in streams:
                if stream is not None:
                    stream.close()
        report(
            f"[streams] {len(wanted)} console streams asked for: {WEBHOOKS} webhooks "
            f"answered in {seconds[len(seconds) // 2] * 1000:.0f} ms (median), "
            f"{seconds[-1] * 1000:.0f} ms at most"
        )
        assert all(hit.status == 200 for hit in hits.hits), tail(node.log)
        assert seconds[-1] < BOUND_S, seconds
        assert all(s is not None and s.status_code == 200 for s in streams)
