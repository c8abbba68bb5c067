"""``GET /api/calls/<CallSid>``: the screen-pop JSON behind a bearer token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from ivr.jobs import QUEUE_AUDIT, QUEUE_CRM
from ivr.services import Services
from tests.backlog import old_job
from tests.conftest import ACCOUNTS, API_TOKEN, SINGLE_OWNER
from tests.twilio_phone import Call

Phone = Callable[..., Call]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FIELDS = {
    "call_sid", "caller", "identified", "reason", "topic", "language", "customer_number",
    "name", "claimed_customer_number", "claimed_unknown", "attempts", "verified_at",
}  # fmt: skip


def test_identified_call_screen_pop(client: FlaskClient, phone: Phone) -> None:
    """An identified call shows every SPEC §4 field, with the account, never the PIN."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ACCOUNTS[0][3])
    response = client.get(f"/api/calls/{call.call_sid}", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= FIELDS
    assert body["identified"] is True and body["reason"] == "verified"
    assert body["caller"] == SINGLE_OWNER and body["customer_number"] == "200001"
    assert body["name"] == "Anna Alpha" and body["routed"] is True
    assert ACCOUNTS[0][3] not in response.get_data(as_text=True)


def test_body_is_the_screen_pop_plus_routing(client: FlaskClient, phone: Phone) -> None:
    """The body holds the SPEC §4 fields plus routed and call_status, and nothing else."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", ACCOUNTS[0][3])
    body = client.get(f"/api/calls/{call.call_sid}", headers=AUTH).get_json()
    assert set(body) == FIELDS | {"routed", "call_status"}


def test_call_in_progress_is_not_identified(client: FlaskClient, phone: Phone) -> None:
    """While the caller is still in the IVR the screen-pop says not identified, not routed."""
    call = phone()
    call.start()
    body = client.get(f"/api/calls/{call.call_sid}", headers=AUTH).get_json()
    assert body["identified"] is False and body["routed"] is False and body["reason"] is None


def test_not_identified_carries_only_the_claimed_number(client: FlaskClient, phone: Phone) -> None:
    """A not-identified call shows the claimed customer number and nothing of the account."""
    call = phone(caller="anonymous")
    call.walk("1", "200002#", "000000", "000000", "000000")
    body = client.get(f"/api/calls/{call.call_sid}", headers=AUTH).get_json()
    assert body["identified"] is False and body["reason"] == "wrong_pin"
    assert body["claimed_customer_number"] == "200002"
    assert body["customer_number"] is None and body["name"] is None
    assert body["caller"] is None


def test_status_callback_shows_in_api(client: FlaskClient, phone: Phone) -> None:
    """The status callback's CallStatus appears as call_status."""
    call = phone()
    call.start()
    call.hang_up()
    body = client.get(f"/api/calls/{call.call_sid}", headers=AUTH).get_json()
    assert body["call_status"] == "completed"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 403),
    ],
)
def test_api_requires_the_token(
    client: FlaskClient, phone: Phone, headers: dict[str, str], status: int
) -> None:
    """Without the right bearer token the API answers 401/403 and no screen-pop."""
    call = phone()
    call.start()
    response = client.get(f"/api/calls/{call.call_sid}", headers=headers)
    assert response.status_code == status
    assert "identified" not in response.get_data(as_text=True)


def test_unknown_call_is_404(client: FlaskClient) -> None:
    """An unknown CallSid is 404."""
    assert client.get("/api/calls/CA" + "0" * 32, headers=AUTH).status_code == 404


@pytest.mark.parametrize("overrides", [{"api": {"enabled": False, "token": ""}}])
def test_api_turned_off_refuses_everyone(client: FlaskClient) -> None:
    """With [api] enabled = false the screen-pop API answers 404 to any token."""
    for token in ("", "x", API_TOKEN):
        response = client.get("/api/calls/CA" + "0" * 32,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert response.status_code == 404


def test_health_and_readiness(client: FlaskClient) -> None:
    """/healthz answers; /readyz says only whether Redis, the PIN store and the workers
    are fine."""
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    plain = {"redis": "ok", "pin_store": "ok", "worker_backlog": "ok"}
    assert ready.get_json()["checks"] == plain
    wrong = client.get("/readyz", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.get_json()["checks"] == plain


def test_readiness_details_need_the_api_token(phone: Phone, client: FlaskClient) -> None:
    """The PIN-failure rate and its alarm (whether spraying is noticed) are shown only
    with the API token."""
    phone(caller=SINGLE_OWNER).walk("1", "000000")
    checks = client.get("/readyz", headers={"Authorization": f"Bearer {API_TOKEN}"}).get_json()
    assert checks["checks"]["pin_failures_last_minute"] == 1
    assert checks["checks"]["pin_failure_alert"] is False


@pytest.mark.parametrize("overrides", [{"queue": {"backlog_alert_s": 60}}])
def test_readiness_shows_a_stale_backlog(client: FlaskClient, services: Services) -> None:
    """A job waiting longer than [queue] backlog_alert_s makes the backlog "stale" while
    the node stays ready; its age per queue is shown with the API token only."""
    old_job(services.queue, QUEUE_AUDIT, "audit-waiting", age_s=90)
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200
    assert anonymous.get_json()["checks"]["worker_backlog"] == "stale"
    assert "worker_backlog_s" not in anonymous.get_json()["checks"]
    ages = client.get("/readyz", headers=AUTH).get_json()["checks"]["worker_backlog_s"]
    assert ages[QUEUE_AUDIT] >= 90 and ages[QUEUE_CRM] == 0 and ages["audit-journal"] == 0
