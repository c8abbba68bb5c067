"""The agent console's board and call page: badges, screen-pop, unknown calls, no PIN.

Also home of the console fixtures the other ``test_agent_*`` modules import: two agents
(``anna``; ``sam``, a supervisor) and a logged-in test client.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from ivr import create_app
from ivr.config import Settings
from ivr.jobs import TERMINAL_STATUSES
from ivr.services import Services
from ivr.store.events import EventStore
from ivr.store.redis_client import open_link
from tests.conftest import ACCOUNTS, AUTH_TOKEN, SINGLE_OWNER
from tests.redis_server import free_port
from tests.twilio_phone import Call

Phone = Callable[..., Call]

# A cheap hash method: the tests log in many times; production hashes use the default.
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORDS = {"anna": "anna-secret-pw", "sam": "sam-secret-pw"}
CONSOLE: dict[str, Any] = {
    "secret_key": "console-secret-key-0123456789abcdef-xyz",
    "agents": {
        name: generate_password_hash(pw, method=FAST_HASH) for name, pw in PASSWORDS.items()
    },
    "supervisors": ["sam"],
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ANNA_PIN = ACCOUNTS[0][3]


@pytest.fixture
def overrides() -> dict[str, dict[str, Any]]:
    """Every console test runs with the two agents configured."""
    return {"console": CONSOLE}


def csrf_of(response: TestResponse) -> str:
    """The CSRF token in a rendered page's forms."""
    match = CSRF.search(response.get_data(as_text=True))
    assert match is not None, "no CSRF field on the page"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str | None = None) -> TestResponse:
    """Log in through the form, as a browser does (GET for the token, then POST)."""
    token = csrf_of(client.get("/agent/login"))
    form = {
        "csrf_token": token,
        "username": username,
        "password": PASSWORDS[username] if password is None else password,
    }
    return client.post("/agent/login", data=form)


@pytest.fixture
def agent_client(client: FlaskClient) -> FlaskClient:
    """The test client, logged in as the agent ``anna`` (not a supervisor)."""
    assert log_in(client, "anna").status_code == 303
    return client


@pytest.fixture
def supervisor_client(client: FlaskClient) -> FlaskClient:
    """The test client, logged in as the supervisor ``sam``."""
    assert log_in(client, "sam").status_code == 303
    return client


def row_of(html: str, call_sid: str) -> str:
    """The board row of ``call_sid`` in ``html`` (empty if there is none)."""
    match = re.search(rf'<tr data-call="{call_sid}".*?</tr>', html, re.S)
    return match.group(0) if match else ""


def test_identified_call_on_board(agent_client: FlaskClient, phone: Phone) -> None:
    """A verified call is on the board with the identified badge, its topic and reason."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ANNA_PIN)
    html = agent_client.get("/agent").get_data(as_text=True)
    row = row_of(html, call.call_sid)
    assert 'data-identified="true"' in row and "Identifiziert" in row
    assert "Anna Alpha (200001)" in row and "Zahlungen" in row and "PIN bestätigt" in row


def test_not_identified_call_on_board(agent_client: FlaskClient, phone: Phone) -> None:
    """A call with wrong PINs shows "not identified" and nothing of the claimed account."""
    call = phone(caller="anonymous")
    call.walk("1", "200002#", "000000", "000000", "000000")
    row = row_of(agent_client.get("/agent").get_data(as_text=True), call.call_sid)
    assert 'data-identified="false"' in row and "Nicht identifiziert" in row
    assert "Bernd" not in row and "200002" not in row and "Rufnummer unterdrückt" in row


def test_board_is_newest_first_and_drops_ended_calls(
    settings: Settings, services: Services
) -> None:
    """Calls are listed by start time, newest first; a hung-up call leaves the board."""
    now = [datetime(2030, 1, 1, 10, 0, tzinfo=UTC)]
    timed = dataclasses.replace(services.calls, clock=lambda: now[0])
    client = create_app(settings, dataclasses.replace(services, calls=timed)).test_client()
    log_in(client, "anna")
    calls = [Call(client=client, auth_token=AUTH_TOKEN, caller=SINGLE_OWNER) for _ in range(3)]
    for minutes, call in zip((5, 0, 10), calls, strict=True):  # started out of order
        now[0] = datetime(2030, 1, 1, 10, minutes, tzinfo=UTC)
        call.start()
    html = client.get("/agent").get_data(as_text=True)
    newest_first = [calls[2], calls[0], calls[1]]
    positions = [html.index(call.call_sid) for call in newest_first]
    assert positions == sorted(positions)
    calls[0].hang_up()
    html = client.get("/agent").get_data(as_text=True)
    assert calls[0].call_sid not in html and calls[1].call_sid in html


def test_screen_pop_of_identified_call(agent_client: FlaskClient, phone: Phone) -> None:
    """The call page's banner says identified and shows customer number and name."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ANNA_PIN)
    response = agent_client.get(f"/agent/calls/{call.call_sid}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="banner" class="banner identified" data-identified="true"', html)
    assert 'id="customer-number">200001<' in html and 'id="customer-name">Anna Alpha<' in html
    assert "PIN bestätigt" in html and 'id="attempts">1<' in html and "<time datetime=" in html


def test_screen_pop_of_wrong_pin(agent_client: FlaskClient, phone: Phone) -> None:
    """Not identified: a clear banner, the claimed number marked unverified, no name."""
    call = phone(caller="anonymous")
    call.walk("1", "200002#", "000000", "000000", "000000")
    html = agent_client.get(f"/agent/calls/{call.call_sid}").get_data(as_text=True)
    assert 'data-identified="false"' in html and "Nicht identifiziert" in html
    assert 'id="claimed-number">200002<' in html and "nicht bestätigt" in html
    assert "Bernd Beta" not in html and 'id="customer-number"' not in html
    assert "PIN falsch" in html and 'id="attempts">3<' in html


def test_call_in_the_ivr_is_identifying_not_red(agent_client: FlaskClient, phone: Phone) -> None:
    """A call still in the IVR shows a neutral "identification running", not "not identified"."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")  # at the PIN prompt
    row = row_of(agent_client.get("/agent").get_data(as_text=True), call.call_sid)
    assert 'data-phase="identifying"' in row
    assert '<span class="badge identifying">Identifizierung läuft</span>' in row
    assert "Nicht identifiziert" not in row and "Im Sprachmenü" in row
    html = agent_client.get(f"/agent/calls/{call.call_sid}").get_data(as_text=True)
    assert 'class="banner identifying" data-identified="false" data-phase="identifying"' in html
    assert "<title>Identifizierung läuft · " in html and "Nicht identifiziert" not in html
    assert "noch im Sprachmenü" in html


RUNNING = ("Identifizierung läuft", "Im Sprachmenü ·", "läuft noch", "noch im Sprachmenü",
           "noch nicht gewählt")  # fmt: skip


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize(
    ("keys", "phase", "state", "shown"),
    [
        ((), "ended_in_ivr", "Vor Erreichen eines Agenten beendet", "keines gewählt"),
        (("1",), "ended_in_ivr", "Vor Erreichen eines Agenten beendet", "Nicht durchgestellt"),
        (("1", ANNA_PIN), "identified", "Zum Agenten geleitet · ", "Anna Alpha"),
        (("0",), "not_identified", "Zum Agenten geleitet · ", "Nicht identifiziert"),
    ],
    ids=["hung up at the menu", "hung up at the PIN", "identified", "not identified"],
)
def test_ended_call_is_never_still_running(
    agent_client: FlaskClient,
    phone: Phone,
    status: str,
    keys: tuple[str, ...],
    phase: str,
    state: str,
    shown: str,
) -> None:
    """Once Twilio says a call ended, its page says where it ended and nothing "still running";
    only a routed call is identified or not."""
    call = phone(caller=SINGLE_OWNER)
    call.walk(*keys)
    call.post("/voice/status", call.params(CallStatus=status))
    html = agent_client.get(f"/agent/calls/{call.call_sid}").get_data(as_text=True)
    assert f'data-phase="{phase}"' in html and f'id="state">{state}' in html and shown in html
    assert [text for text in RUNNING if text in html] == []
    if phase == "ended_in_ivr":
        assert '<span class="flag">Im Sprachmenü beendet</span>' in html
        assert "Der Anruf endete im Sprachmenü" in html


@pytest.mark.parametrize(
    ("keys", "reason", "text"),
    [
        (("0",), "not_required", "keine Identifizierung nötig"),
        (("1", "", "", ""), "no_input", "Keine oder keine gültige Eingabe"),
    ],
)
def test_screen_pop_explains_the_reason(
    agent_client: FlaskClient, phone: Phone, keys: tuple[str, ...], reason: str, text: str
) -> None:
    """The call page says what happened for each way a call reaches an agent."""
    call = phone(caller=SINGLE_OWNER)
    call.walk(*keys)
    html = agent_client.get(f"/agent/calls/{call.call_sid}").get_data(as_text=True)
    assert f'data-reason="{reason}"' in html and text in html


def test_screen_pop_of_unavailable(agent_client: FlaskClient, phone: Phone) -> None:
    """A call handed over by the fallback URL shows "system unavailable"."""
    call = phone(caller=SINGLE_OWNER)
    call.start()
    call.post("/voice/fallback", call.params(ErrorCode="11200"))
    html = agent_client.get(f"/agent/calls/{call.call_sid}").get_data(as_text=True)
    assert 'data-reason="unavailable"' in html and "nicht erreichbar" in html


def test_pop_fragment(agent_client: FlaskClient, phone: Phone) -> None:
    """The panel fragment is the screen-pop without the page around it."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ANNA_PIN)
    response = agent_client.get(f"/agent/calls/{call.call_sid}/pop")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="banner"' in html and "<html" not in html


@pytest.mark.parametrize("sid", ["CA" + "0" * 32, "not-a-call-sid", "CA%3Cscript%3E"])
def test_unknown_call_is_404(agent_client: FlaskClient, sid: str) -> None:
    """An unknown or malformed CallSid is a 404 page that echoes nothing back."""
    for path in (f"/agent/calls/{sid}", f"/agent/calls/{sid}/pop"):
        response = agent_client.get(path)
        assert response.status_code == 404
        assert "<script>" not in response.get_data(as_text=True)


def test_no_pin_anywhere(
    agent_client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """Neither the board, the call page nor any board key in Redis holds the PIN."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "987654", ANNA_PIN)
    pages = [agent_client.get(p).get_data(as_text=True) for p in
             ("/agent", f"/agent/calls/{call.call_sid}")]  # fmt: skip
    for html in pages:
        assert "987654" not in html and ANNA_PIN not in html
    keys = list(redis_client.scan_iter("ivr:board:*"))
    assert len(keys) == 3  # stream, index, latest
    for key in keys:
        dumped = redis_client.dump(key) or b""
        assert b"987654" not in dumped and ANNA_PIN.encode() not in dumped
        assert redis_client.ttl(key) > 0  # every key the product writes expires


def test_board_unavailable_is_503(
    app: Flask, agent_client: FlaskClient, services: Services
) -> None:
    """With Redis unreachable the board answers a 503 page, not a stack trace."""
    dead = open_link(services.settings.redis, url=f"redis://127.0.0.1:{free_port()}/0")
    console = app.extensions["ivr.agent"]
    app.extensions["ivr.agent"] = dataclasses.replace(
        console, board=EventStore(dead, services.keys, 60)
    )
    response = agent_client.get("/agent")
    assert response.status_code == 503
    assert "Vorübergehend nicht verfügbar" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    dead.close()
