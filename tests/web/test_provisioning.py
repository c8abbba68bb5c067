"""The provisioning API: accounts created, changed, shown and erased by the customer
system, with its own token, versions (ETag/If-Match) and problem details."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.services import Services
from ivr.store.pin_tables import accounts
from tests.conftest import ACCOUNTS, API_TOKEN
from tests.twilio_phone import Call, parse_task
from workers.jobs import build_context
from workers.journal import drain_all
from workers.main import journal_link as worker_link

Phone = Callable[..., Call]
TOKEN = "provisioning-token-0123456789abcdef0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW = "700001"
CALLER = "+4930555000111"
STRONG_PIN = "402917"
ANNA_NUMBER, ANNA_PIN = ACCOUNTS[0][0], ACCOUNTS[0][3]


@pytest.fixture
def overrides() -> dict[str, dict[str, Any]]:
    """The provisioning API turned on."""
    return {"api": {"provisioning_token": TOKEN}}


def put(client: FlaskClient, number: str, body: Any, **headers: str) -> TestResponse:
    return client.put(f"/api/accounts/{number}", json=body, headers={**AUTH, **headers})


def problem_of(response: TestResponse) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json", response.data
    body: dict[str, Any] = response.get_json()
    assert body["status"] == response.status_code
    return body


def verified(phone: Phone, caller: str, *digits: str) -> bool:
    """Whether a call from ``caller`` typing ``digits`` ends identified."""
    return bool(parse_task(phone(caller=caller).walk(*digits))["identified"])


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": f"Bearer {API_TOKEN}"}, 403),
     ({"Authorization": "Bearer nope"}, 403), ({"Authorization": "Basic x"}, 401)],
)  # fmt: skip
def test_only_the_provisioning_token_opens_it(
    client: FlaskClient, headers: dict[str, str], status: int
) -> None:
    """No token is 401, the screen-pop token or a wrong one 403, each as problem details."""
    answer = client.get(f"/api/accounts/{ANNA_NUMBER}", headers=headers)
    assert answer.status_code == status
    assert problem_of(answer)["type"] == "about:blank"


def test_the_provisioning_token_does_not_open_the_screen_pop_api(client: FlaskClient) -> None:
    """The screen-pop API refuses the provisioning token."""
    assert client.get("/api/calls/CA" + "0" * 32, headers=AUTH).status_code == 403


@pytest.mark.parametrize("overrides", [{}])
def test_it_is_off_without_its_token(client: FlaskClient) -> None:
    """Without [api] provisioning_token every account URL answers 404, whatever is sent."""
    for headers in ({}, AUTH, {"Authorization": f"Bearer {API_TOKEN}"}):
        answer = client.get(f"/api/accounts/{ANNA_NUMBER}", headers=headers)
        assert answer.status_code == 404 and "turned off" in problem_of(answer)["detail"]


def test_put_creates_then_changes_nothing_when_repeated(client: FlaskClient, phone: Phone) -> None:
    """A PUT creates the account (201, Location, ETag); the same PUT again is 200 with the
    same ETag; GET shows it without PIN material; its caller is then identified."""
    body = {"name": "Jana Beispiel", "phones": ["030 555000111"], "pin": STRONG_PIN}
    first = put(client, NEW, body)
    assert first.status_code == 201 and first.headers["Location"] == f"/api/accounts/{NEW}"
    again = put(client, NEW, body)
    assert again.status_code == 200 and again.headers["ETag"] == first.headers["ETag"]
    shown = client.get(f"/api/accounts/{NEW}", headers=AUTH)
    account = shown.get_json()
    assert (account["name"], account["phones"], account["pin_set"]) == (
        "Jana Beispiel", [CALLER], True,
    )  # fmt: skip
    assert STRONG_PIN.encode() not in shown.data and "pin" not in account
    assert shown.headers["Cache-Control"] == "no-store"
    assert verified(phone, CALLER, "1", STRONG_PIN)


def test_put_replaces_phones_but_keeps_the_pin(client: FlaskClient, phone: Phone) -> None:
    """PUT without phones leaves none; without a PIN it keeps the one set before."""
    put(client, NEW, {"name": "Jana", "phones": [CALLER], "pin": STRONG_PIN})
    replaced = put(client, NEW, {"name": "Jana B."})
    assert replaced.get_json()["phones"] == [] and replaced.get_json()["pin_set"] is True
    assert verified(phone, "+4930555000999", "1", NEW, STRONG_PIN)


def test_patch_changes_only_the_fields_given(client: FlaskClient) -> None:
    """PATCH {"name"} keeps the phones; PATCH of a missing account is 404."""
    put(client, NEW, {"name": "Jana", "phones": [CALLER]})
    patched = client.patch(f"/api/accounts/{NEW}", json={"name": "Jana B."}, headers=AUTH)
    assert patched.get_json()["phones"] == [CALLER] and patched.get_json()["name"] == "Jana B."
    missing = client.patch("/api/accounts/799999", json={"name": "X"}, headers=AUTH)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": "J", "pin": "111111"}, "pin"), ({"name": "J", "pin": "123456"}, "pin"),
     ({"name": "J", "pin": 402917}, "pin"), ({"name": ""}, "name"), ({}, "name"),
     ({"name": "J", "phones": ["not a number"]}, "phones/0"), ({"name": "J", "x": 1}, "x"),
     ([], "")],
)  # fmt: skip
def test_refused_fields_are_named_and_no_pin_is_echoed(
    client: FlaskClient, body: Any, field: str
) -> None:
    """Each refused field is a 422 problem naming it (and the PIN rule), never the PIN."""
    answer = put(client, NEW, body)
    assert answer.status_code == 422
    details = problem_of(answer)
    assert details["type"] == "urn:ivr:problem:invalid-fields"
    assert field in [error["field"] for error in details["errors"]]
    for weak in ("111111", "123456", "402917"):
        assert weak.encode() not in answer.data
    assert client.get(f"/api/accounts/{NEW}", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [(b"{", "application/json", 400), (b"name=x", "application/x-www-form-urlencoded", 415),
     (b'{"name": "' + b"x" * 20_000 + b'"}', "application/json", 413)],
)  # fmt: skip
def test_bad_bodies_are_problems(
    client: FlaskClient, data: bytes, content_type: str, status: int
) -> None:
    """Broken JSON is 400, another media type 415, a body over 16 KiB 413."""
    answer = client.put(f"/api/accounts/{NEW}", data=data, content_type=content_type,
                        headers=AUTH)  # fmt: skip
    assert answer.status_code == status
    problem_of(answer)


def test_versions_guard_concurrent_edits(client: FlaskClient) -> None:
    """If-Match with a stale ETag is 412, with the current one it applies; If-None-Match *
    refuses to overwrite; a GET with the current ETag in If-None-Match is 304."""
    tag = put(client, NEW, {"name": "Jana"}).headers["ETag"]
    newer = client.patch(f"/api/accounts/{NEW}", json={"name": "Jana B."},
                         headers={**AUTH, "If-Match": tag})  # fmt: skip
    assert newer.status_code == 200 and newer.headers["ETag"] != tag
    stale = client.patch(f"/api/accounts/{NEW}", json={"name": "Jana C."},
                         headers={**AUTH, "If-Match": tag})  # fmt: skip
    assert stale.status_code == 412
    assert put(client, NEW, {"name": "X"}, **{"If-None-Match": "*"}).status_code == 412
    current = newer.headers["ETag"]
    cached = client.get(f"/api/accounts/{NEW}", headers={**AUTH, "If-None-Match": current})
    assert cached.status_code == 304
    assert (
        client.delete(f"/api/accounts/{NEW}", headers={**AUTH, "If-Match": tag}).status_code == 412
    )


def test_of_racing_edits_with_one_version_exactly_one_wins(app: Any) -> None:
    """Eight PATCHes sent at once with the same If-Match: one applies, the others are 412."""
    client = app.test_client()
    tag = put(client, NEW, {"name": "Jana"}).headers["ETag"]
    start, statuses = threading.Barrier(8), []

    def edit(n: int) -> None:
        mine = app.test_client()
        start.wait()
        answer = mine.patch(f"/api/accounts/{NEW}", json={"name": f"Editor {n}"},
                            headers={**AUTH, "If-Match": tag})  # fmt: skip
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [412] * 7


def test_edits_waiting_behind_another_writer_see_its_version(app: Any, services: Services) -> None:
    """While another writer holds the account changed but not yet committed, eight
    PATCHes with the version before it wait; once it commits, every one of them is 412
    (none overwrites the change it never saw)."""
    client = app.test_client()
    tag = put(client, NEW, {"name": "Jana"}).headers["ETag"]
    statuses: list[int] = []

    def edit(n: int) -> None:
        answer = app.test_client().patch(f"/api/accounts/{NEW}", json={"name": f"Editor {n}"},
                                          headers={**AUTH, "If-Match": tag})  # fmt: skip
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    with services.pins.engine.connect() as writer:
        writer.execute(
            accounts.update().where(accounts.c.customer_number == NEW)
            .values(name="Other", updated_at=datetime.now(UTC) + timedelta(seconds=1))
        )  # fmt: skip
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the edits are under way, waiting for the writer
        writer.commit()
    for thread in threads:
        thread.join()
    assert statuses == [412] * 8
    assert client.get(f"/api/accounts/{NEW}", headers=AUTH).get_json()["name"] == "Other"


def test_a_generated_pin_is_returned_once_and_works(client: FlaskClient, phone: Phone) -> None:
    """POST pin {"generate": true} returns a PIN the caller can use; it is never shown
    again; a given weak PIN is refused naming the rule."""
    put(client, NEW, {"name": "Jana", "phones": [CALLER]})
    answer = client.post(f"/api/accounts/{NEW}/pin", json={"generate": True}, headers=AUTH)
    pin = answer.get_json()["pin"]
    assert answer.headers["Cache-Control"] == "no-store" and len(pin) == 6
    assert pin.encode() not in client.get(f"/api/accounts/{NEW}", headers=AUTH).data
    assert verified(phone, CALLER, "1", pin)
    weak = client.post(f"/api/accounts/{NEW}/pin", json={"pin": "000000"}, headers=AUTH)
    assert weak.status_code == 422 and b"000000" not in weak.data
    given = client.post(f"/api/accounts/{NEW}/pin", json={"pin": STRONG_PIN}, headers=AUTH)
    assert given.status_code == 204 and given.headers["ETag"]
    assert verified(phone, CALLER, "1", STRONG_PIN)


def test_a_new_pin_lifts_the_account_lockout(
    client: FlaskClient, phone: Phone, services: Services
) -> None:
    """After the account is locked by wrong PINs, a PIN set through the API works at once."""
    limit = services.settings.lockout.account_max_failures
    for n in range(limit):
        phone(caller=f"+49305550007{n:02d}").walk("1", ANNA_NUMBER, "000000")
    assert not verified(phone, "+4930555000778", "1", ANNA_NUMBER, ANNA_PIN)
    client.post(f"/api/accounts/{ANNA_NUMBER}/pin", json={"pin": STRONG_PIN}, headers=AUTH)
    assert verified(phone, "+4930555000779", "1", ANNA_NUMBER, STRONG_PIN)


def test_delete_erases_the_account_its_lockout_and_its_audit_identity(
    client: FlaskClient, phone: Phone, services: Services, redis_client: redis.Redis
) -> None:
    """DELETE is 204 (also repeated); the account is gone, its lockout counters too, and
    its audit rows keep time and outcome but neither its number nor its phone."""
    put(client, NEW, {"name": "Jana", "phones": [CALLER], "pin": STRONG_PIN})
    phone(caller=CALLER).walk("1", "000000")  # a wrong PIN: counted and audited
    _drain_journal(services)
    subject = services.hasher.subject("account", NEW)
    assert redis_client.exists(services.keys.account(subject).fails)
    assert client.delete(f"/api/accounts/{NEW}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/accounts/{NEW}", headers=AUTH).status_code == 204
    assert client.get(f"/api/accounts/{NEW}", headers=AUTH).status_code == 404
    assert not redis_client.exists(services.keys.account(subject).fails)
    rows = list(services.audit.export(datetime.now(UTC) - timedelta(hours=1)))
    assert [row.outcome for row in rows] == ["wrong"]
    assert NEW not in rows[0].customer_number and rows[0].customer_number.startswith("erased:")
    assert rows[0].caller is not None and CALLER not in rows[0].caller


def test_the_openapi_document_is_served_as_kept_in_the_repo(client: FlaskClient) -> None:
    """/api/openapi.json is the repository's ivr/web/openapi.json, OpenAPI 3.1, no token."""
    from pathlib import Path

    import ivr.web

    kept = (Path(ivr.web.__file__).parent / "openapi.json").read_bytes()
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.data == kept
    assert served.get_json()["openapi"] == "3.1.0"


def _drain_journal(services: Services) -> None:
    """Move the journalled attempts to the SQL audit trail: the worker's own drain."""
    settings = services.settings
    ctx = build_context(settings, redis.Redis.from_url(settings.redis.url), worker_link(settings))
    try:
        drain_all(ctx, "test-drain")
    finally:
        ctx.close()
