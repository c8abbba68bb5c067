"""Console login, session cookie and CSRF: forged, stale and revoked sessions get nowhere."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from functools import partial
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from ivr import create_app
from ivr.config import ConsoleSettings, Settings
from ivr.services import Services
from ivr.web.agent_auth import AgentDirectory
from ivr.web.agent_throttle import MAX_FAILURES
from tests.live_server import serving
from tests.racing import race
from tests.web.test_agent import (
    CONSOLE,
    FAST_HASH,
    PASSWORDS,
    agent_client,
    csrf_of,
    log_in,
    overrides,
)

__all__ = ["agent_client", "overrides"]  # fixtures shared with tests.web.test_agent


def cookie_header(client: FlaskClient) -> str:
    """The raw Set-Cookie the login page sends."""
    response = client.get("/agent/login")
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == 1
    return headers[0]


@pytest.mark.parametrize("overrides", [{}])
@pytest.mark.parametrize("path", ["/agent", "/agent/login", "/agent/events", "/agent/calls/x"])
def test_console_disabled_without_agents(client: FlaskClient, path: str) -> None:
    """Without [console.agents] every console URL is a 404 saying how to enable it."""
    response = client.get(path)
    assert response.status_code == 404
    assert "[console.agents]" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_pages_need_login(client: FlaskClient) -> None:
    """Without a session the board redirects to the login page, keeping where to return."""
    response = client.get("/agent/calls/CA" + "1" * 32)
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/login?next=/agent/calls/CA" + "1" * 32


@pytest.mark.parametrize("path", ["/agent/events", "/agent/calls/CA" + "1" * 32 + "/pop"])
def test_script_endpoints_answer_401(client: FlaskClient, path: str) -> None:
    """The event stream and fragments answer 401 (scripts cannot follow a login form)."""
    assert client.get(path).status_code == 401


def test_session_cookie_flags(client: FlaskClient) -> None:
    """The cookie is HttpOnly, SameSite=Lax, scoped to /agent and Secure behind https."""
    header = cookie_header(client)
    assert header.startswith("ivr_agent=")
    for flag in ("HttpOnly", "SameSite=Lax", "Path=/agent", "Secure"):
        assert flag in header


def test_login_and_logout(client: FlaskClient) -> None:
    """A right password opens the board (permanent cookie); logout needs CSRF, then ends it."""
    response = log_in(client, "anna")
    assert response.status_code == 303 and response.headers["Location"] == "/agent"
    assert "Expires=" in response.headers["Set-Cookie"]
    board = client.get("/agent")
    assert board.status_code == 200 and 'id="user">anna<' in board.get_data(as_text=True)
    assert client.post("/agent/logout").status_code == 400  # no token: still logged in
    assert client.get("/agent").status_code == 200
    token = csrf_of(board)
    assert client.post("/agent/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/agent").status_code == 303


@pytest.mark.parametrize(
    ("username", "password"), [("anna", "wrong"), ("nobody", "anna-secret-pw"), ("", "")]
)
def test_login_failure_is_generic(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, username: str, password: str
) -> None:
    """Wrong password and unknown user get the same 401 page; the log names neither."""
    caplog.set_level(logging.INFO)
    response = log_in(client, username, password)
    html = response.get_data(as_text=True)
    assert response.status_code == 401 and "Anmeldung fehlgeschlagen" in html
    assert client.get("/agent").status_code == 303
    assert "nobody" not in caplog.text
    assert not password or password not in caplog.text


def test_login_needs_csrf(client: FlaskClient) -> None:
    """A login POST without the session's token is refused and logs nobody in."""
    form = {"username": "anna", "password": PASSWORDS["anna"]}
    response = client.post("/agent/login", data=form)
    assert response.status_code == 400 and "Sitzung" in response.get_data(as_text=True)
    response = client.post("/agent/login", data=form | {"csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/agent").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/api/calls/x"])
def test_no_open_redirect(client: FlaskClient, target: str) -> None:
    """After login only a console path is followed; anything else goes to the board."""
    token = csrf_of(client.get("/agent/login"))
    form = {"csrf_token": token, "username": "anna", "password": PASSWORDS["anna"]}
    response = client.post("/agent/login", data=form | {"next": target})
    assert response.headers["Location"] == "/agent"


def test_forged_session_cookie(client: FlaskClient, app: Flask) -> None:
    """A cookie not signed with [console] secret_key is ignored: login page, 401 stream."""
    other = Flask("forger")
    other.secret_key = "some-other-secret-key-0123456789abcdef"
    signer = other.session_interface.get_signing_serializer(other)  # type: ignore[attr-defined]
    forged = signer.dumps({"agent": "sam", "login_at": int(time.time()), "fp": "x"})
    for value in (forged, "garbage", ""):
        client.set_cookie("ivr_agent", value, path="/agent")
        assert client.get("/agent").status_code == 303
        assert client.get("/agent/events").status_code == 401


def test_stale_session_ends(app: Flask, agent_client: FlaskClient, settings: Settings) -> None:
    """A session older than session_max_age_s is over, however often it was refreshed."""
    console = app.extensions["ivr.agent"]
    later = time.time() + settings.console.session_max_age_s + 1
    app.extensions["ivr.agent"] = dataclasses.replace(console, clock=lambda: later)
    response = agent_client.get("/agent")
    assert response.status_code == 303
    app.extensions["ivr.agent"] = console
    assert agent_client.get("/agent").status_code == 303  # the stale session was dropped


@pytest.mark.parametrize("change", ["password", "removed"])
def test_config_change_revokes_sessions(
    agent_client: FlaskClient, settings: Settings, services: Services, change: str
) -> None:
    """A new password hash or removing the agent ends their sessions at once."""
    agents = dict(CONSOLE["agents"])
    if change == "password":
        agents["anna"] = generate_password_hash("new-password", method=FAST_HASH)
    else:
        del agents["anna"]
    console = ConsoleSettings(**(CONSOLE | {"agents": agents, "supervisors": ("sam",)}))
    changed_settings = dataclasses.replace(settings, console=console)
    changed = create_app(changed_settings, dataclasses.replace(services, settings=changed_settings))
    client = changed.test_client()
    cookie = agent_client.get_cookie("ivr_agent", path="/agent")
    assert cookie is not None
    client.set_cookie("ivr_agent", cookie.value, path="/agent")
    assert client.get("/agent").status_code == 303


def test_language_switch(agent_client: FlaskClient) -> None:
    """The console speaks German until switched to English (a CSRF-protected form)."""
    board = agent_client.get("/agent")
    assert "Aktuelle Anrufe" in board.get_data(as_text=True)
    form: dict[str, Any] = {"csrf_token": csrf_of(board), "lang": "en", "next": "/agent"}
    assert agent_client.post("/agent/lang", data=form).status_code == 303
    html = agent_client.get("/agent").get_data(as_text=True)
    assert "Current calls" in html and '<html lang="en">' in html


def test_security_headers(agent_client: FlaskClient) -> None:
    """Pages forbid framing and caching and only run this origin's scripts."""
    response = agent_client.get("/agent")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_directory_checks_passwords() -> None:
    """Only a configured agent's own password authenticates; supervisors are marked."""
    directory = AgentDirectory(ConsoleSettings(**(CONSOLE | {"supervisors": ("sam",)})))
    sam = directory.authenticate("sam", PASSWORDS["sam"])
    anna = directory.authenticate("anna", PASSWORDS["anna"])
    assert sam is not None and sam.supervisor and anna is not None and not anna.supervisor
    assert directory.authenticate("anna", PASSWORDS["sam"]) is None
    assert directory.authenticate("nobody", "x") is None
    assert directory.authenticate("anna", PASSWORDS["anna"] + "x" * 600) is None


def test_password_guessing_is_throttled_per_username(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    """After MAX_FAILURES wrong passwords even the right one is refused (429) for that
    username, while other agents still log in; the Redis key holds no username."""
    for _ in range(MAX_FAILURES):
        assert log_in(client, "anna", "wrong").status_code == 401
    refused = log_in(client, "anna")
    assert refused.status_code == 429 and "Zu viele Fehlversuche" in refused.get_data(as_text=True)
    keys = [k.decode() for k in redis_client.scan_iter("*agent-login*")]
    assert len(keys) == 1 and "anna" not in keys[0] and redis_client.ttl(keys[0]) > 0
    other = next(name for name in PASSWORDS if name != "anna")
    assert log_in(client, other).status_code == 303


def test_successful_login_forgets_failures(client: FlaskClient) -> None:
    """A correct password clears the failures counted for that username."""
    for _ in range(MAX_FAILURES - 1):
        log_in(client, "anna", "wrong")
    assert log_in(client, "anna").status_code == 303
    client.post("/agent/logout", data={"csrf_token": csrf_of(client.get("/agent"))})
    for _ in range(MAX_FAILURES - 1):
        log_in(client, "anna", "wrong")
    assert log_in(client, "anna").status_code == 303


def guess_over_http(base: str, password: str) -> int:
    """One login attempt as a browser makes it (its own cookie jar), over real HTTP."""
    with requests.Session() as browser:
        form_page = browser.get(f"{base}/agent/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)
        assert token is not None
        answer = browser.post(
            f"{base}/agent/login", timeout=30, allow_redirects=False,
            data={"csrf_token": token.group(1), "username": "anna", "password": password},
        )  # fmt: skip
        return answer.status_code


@pytest.mark.parametrize(
    "overrides", [{"console": CONSOLE, "server": {"public_base_url": "http://ivr.example.com"}}]
)  # plain http: the session cookie is not Secure, so it travels to the test server
def test_parallel_guesses_cannot_pass_the_limit(app: Flask) -> None:
    """100 wrong passwords for one username at once, over a threaded HTTP server: exactly
    MAX_FAILURES are checked (401), every other one is refused before the check (429)."""
    with serving(app) as base:
        answers = race([partial(guess_over_http, base, f"wrong-{i}") for i in range(100)])
    assert (answers.count(401), answers.count(429)) == (MAX_FAILURES, 100 - MAX_FAILURES), answers


def replay_cookie(source: FlaskClient, app: Flask) -> FlaskClient:
    """A new browser that carries a copy of ``source``'s session cookie."""
    cookie = source.get_cookie("ivr_agent", path="/agent")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("ivr_agent", cookie.value, path="/agent")
    return thief


def test_logout_ends_the_session_server_side(app: Flask, agent_client: FlaskClient) -> None:
    """A cookie captured before logout opens nothing afterwards: not the board, not the
    event stream (issue 11, item 6)."""
    thief = replay_cookie(agent_client, app)
    assert thief.get("/agent").status_code == 200  # the copy works while logged in
    agent_client.post("/agent/logout", data={"csrf_token": csrf_of(agent_client.get("/agent"))})
    assert thief.get("/agent").status_code == 303
    assert thief.get("/agent/events").status_code == 401


def test_a_supervisor_ends_an_agents_sessions(app: Flask, agent_client: FlaskClient) -> None:
    """A supervisor ends every open session of an agent at once; agents may not."""
    second = replay_cookie(agent_client, app)
    assert agent_client.get("/agent/agents").status_code == 403
    supervisor = app.test_client()
    assert log_in(supervisor, "sam").status_code == 303
    listing = supervisor.get("/agent/agents")
    assert listing.status_code == 200 and "end-anna" in listing.get_data(as_text=True)
    ended = supervisor.post("/agent/agents/anna/end-sessions",
                            data={"csrf_token": csrf_of(listing)})  # fmt: skip
    assert ended.status_code == 303
    assert agent_client.get("/agent").status_code == 303
    assert second.get("/agent").status_code == 303
    assert supervisor.get("/agent").status_code == 200  # only anna's sessions ended


def test_session_keys_hold_no_username_and_expire(
    agent_client: FlaskClient, redis_client: redis.Redis
) -> None:
    """The server-side session is a keyed hash in Redis, expiring with the session."""
    keys = [k.decode() for k in redis_client.scan_iter("*agent-session*")]
    assert len(keys) == 2 and not any("anna" in key for key in keys)
    max_age = ConsoleSettings().session_max_age_s
    assert all(0 < redis_client.ttl(key) <= max_age for key in keys)
