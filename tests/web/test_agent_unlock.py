"""Supervisors unlock the account a call names, from the call page, audited first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from ivr.services import Services
from ivr.store.audit import AuditKind, AuditStore
from tests.conftest import SINGLE_OWNER
from tests.twilio_phone import Call
from tests.web.test_agent import ANNA_PIN, CONSOLE, csrf_of, log_in

Phone = Callable[..., Call]
WRONG = "000000"


@pytest.fixture
def overrides() -> dict[str, dict[str, Any]]:
    """Agents configured; three failures lock an account, so one call can do it."""
    return {"console": CONSOLE, "lockout": {"account_max_failures": 3}}


@pytest.fixture
def locked_call(phone: Phone) -> Call:
    """A call of Anna's that met her locked account (after a call with three wrong PINs)."""
    phone(caller=SINGLE_OWNER).walk("1", WRONG, WRONG, WRONG)
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ANNA_PIN)
    return call


def lock_seconds(services: Services, number: str = "200001") -> int:
    return services.lockout.account_lock_ttl(services.hasher.subject("account", number))


def unlock_rows(services: Services) -> list[Any]:
    audit = AuditStore(services.pins.engine)
    audit.create_tables()
    since = datetime.now(UTC) - timedelta(hours=1)
    return [r for r in audit.export(since) if r.kind is AuditKind.UNLOCK]


def test_supervisor_unlocks_and_it_is_audited(
    client: FlaskClient, phone: Phone, services: Services, locked_call: Call
) -> None:
    """The locked call's page offers the unlock; using it lifts the lock and audits who."""
    log_in(client, "sam")
    page = client.get(f"/agent/calls/{locked_call.call_sid}")
    html = page.get_data(as_text=True)
    assert 'data-reason="locked"' in html and "ist noch 30 min gesperrt" in html
    assert lock_seconds(services) > 0
    path = f"/agent/calls/{locked_call.call_sid}/unlock"
    response = client.post(path, data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/agent/calls/{locked_call.call_sid}"
    after = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Konto 200001 wurde entsperrt" in after and "nicht gesperrt" in after
    assert lock_seconds(services) == 0
    (row,) = unlock_rows(services)
    assert (row.customer_number, row.actor, row.source) == ("200001", "sam", "console")
    retry = phone(caller=SINGLE_OWNER)
    retry.walk("1", ANNA_PIN)
    assert "PIN bestätigt" in client.get(f"/agent/calls/{retry.call_sid}").get_data(as_text=True)


def test_agent_cannot_unlock(client: FlaskClient, services: Services, locked_call: Call) -> None:
    """A plain agent sees no unlock form and a forged POST is refused with 403."""
    log_in(client, "anna")
    page = client.get(f"/agent/calls/{locked_call.call_sid}")
    assert 'id="unlock"' not in page.get_data(as_text=True)
    path = f"/agent/calls/{locked_call.call_sid}/unlock"
    assert client.post(path, data={"csrf_token": csrf_of(page)}).status_code == 403
    assert lock_seconds(services) > 0 and unlock_rows(services) == []


def test_unlock_needs_csrf(client: FlaskClient, services: Services, locked_call: Call) -> None:
    """Without the session's CSRF token nothing is unlocked, even for a supervisor."""
    log_in(client, "sam")
    path = f"/agent/calls/{locked_call.call_sid}/unlock"
    assert client.post(path).status_code == 400
    assert client.post(path, data={"csrf_token": "guess"}).status_code == 400
    assert lock_seconds(services) > 0 and unlock_rows(services) == []


def test_no_unlock_without_audit(
    client: FlaskClient, services: Services, locked_call: Call, tmp_path: Path
) -> None:
    """If the audit cannot be written the account stays locked and the page says so."""
    log_in(client, "sam")
    page = client.get(f"/agent/calls/{locked_call.call_sid}")
    database = tmp_path / "pins.sqlite3"  # the test store (see tests.conftest.settings)
    database.unlink()
    database.mkdir()  # now no SQLite database can be opened there
    services.pins.engine.dispose()
    path = f"/agent/calls/{locked_call.call_sid}/unlock"
    response = client.post(path, data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert response.status_code == 200
    assert "Entsperren nicht möglich" in response.get_data(as_text=True)
    assert lock_seconds(services) > 0


def test_call_without_account(client: FlaskClient, phone: Phone) -> None:
    """A call that names no customer number has nothing to unlock."""
    log_in(client, "sam")
    call = phone(caller="anonymous")
    call.walk("0")
    page = client.get(f"/agent/calls/{call.call_sid}")
    assert "nennt keine Kundennummer" in page.get_data(as_text=True)
    path = f"/agent/calls/{call.call_sid}/unlock"
    response = client.post(path, data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert "nennt keine Kundennummer" in response.get_data(as_text=True)


def test_unlock_unknown_call(client: FlaskClient) -> None:
    """Unlocking through an unknown CallSid is a 404 and touches nothing."""
    log_in(client, "sam")
    page = client.get("/agent")
    path = "/agent/calls/CA" + "2" * 32 + "/unlock"
    assert client.post(path, data={"csrf_token": csrf_of(page)}).status_code == 404
