"""The provisioning API for the customer system: ``/api/accounts`` and ``/api/openapi.json``.

Behind its own bearer token (``[api] provisioning_token``; the screen-pop token does not
open it, nor this one the screen-pop API); off while that token is empty. JSON in and
out, errors as RFC 9457 problem details (:mod:`ivr.web.problems`), ``ETag`` on every
account answer and ``If-Match`` / ``If-None-Match`` honoured on every change. The
work is :class:`ivr.accounts.AccountService`'s; this module maps HTTP to it. The
OpenAPI 3.1 document beside this module describes every answer and is served as is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from werkzeug.exceptions import RequestEntityTooLarge

from ivr.accounts import ACTOR, SOURCE_API, AccountService, Invalid
from ivr.erasure import Eraser
from ivr.exceptions import AccountNotFound, DependencyError, VersionMismatch
from ivr.services import Services
from ivr.store.account_admin import AccountAdmin, AccountDetails, Expect
from ivr.unlock import Unlocker
from ivr.web.api import bearer_refusal
from ivr.web.problems import problem

bp = Blueprint("provisioning", __name__, url_prefix="/api")
log = logging.getLogger("ivr.web.provisioning")

# An account is a few hundred bytes of JSON; anything far larger is refused unread.
MAX_BODY_BYTES = 16 * 1024
JSON_TYPES = ("application/json", "application/merge-patch+json")
RETRY_AFTER_S = "5"
OPENAPI = resources.files("ivr.web").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json")
def openapi() -> Response:
    """The API's OpenAPI 3.1 document (public: it holds no secret)."""
    return Response(OPENAPI, mimetype="application/json")


@bp.before_request
def require_token() -> Response | None:
    """Off without a provisioning token (404); 401 without credentials, 403 wrong ones."""
    if request.endpoint == "provisioning.openapi":
        return None
    expected = _services().settings.api.provisioning_token
    if not expected:
        return problem(404, "the provisioning API is turned off ([api] provisioning_token)")
    refused = bearer_refusal(expected)
    if refused == 401:
        answer = problem(401, "a bearer token is required")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="ivr-provisioning"'
        return answer
    if refused == 403:
        return problem(403, "the token is not valid here")
    return None


@bp.get("/accounts/<customer_number>")
def show(customer_number: str) -> Response:
    """The account without PIN material (304 if ``If-None-Match`` names its version)."""

    def work(accounts: AccountService) -> Response:
        details = accounts.show(customer_number)
        if details.version in _tags(request.headers.get("If-None-Match")):
            answer = Response(status=304)
            answer.headers["ETag"] = details.version
            return answer
        return _account(details)

    return _run(work)


@bp.put("/accounts/<customer_number>")
def put(customer_number: str) -> Response:
    """Create (201) or replace (200) the account."""

    def work(accounts: AccountService) -> Response:
        details, created = accounts.put(customer_number, _body(), _expect())
        answer = _account(details, 201 if created else 200)
        if created:
            answer.headers["Location"] = f"/api/accounts/{customer_number}"
        return answer

    return _run(work)


@bp.patch("/accounts/<customer_number>")
def patch(customer_number: str) -> Response:
    """Change the fields given; the others stay."""
    return _run(lambda accounts: _account(accounts.patch(customer_number, _body(), _expect())))


@bp.delete("/accounts/<customer_number>")
def delete(customer_number: str) -> Response:
    """Erase the account (GDPR Art. 17); 204 also when there was none (a repeat)."""

    def work(accounts: AccountService) -> Response:
        accounts.erase(customer_number, _expect())
        return Response(status=204, headers={"Cache-Control": "no-store"})

    return _run(work)


@bp.post("/accounts/<customer_number>/pin")
def set_pin(customer_number: str) -> Response:
    """Set a given PIN (204), or generate one and return it once (200)."""

    def work(accounts: AccountService) -> Response:
        details, generated = accounts.set_pin(customer_number, _body(), _expect())
        answer = (
            Response(status=204) if generated is None
            else Response(json.dumps({"pin": generated}), mimetype="application/json")
        )  # fmt: skip
        answer.headers["ETag"] = details.version
        answer.headers["Cache-Control"] = "no-store"
        return answer

    return _run(work)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    return problem(413, f"the body may hold at most {MAX_BODY_BYTES} bytes")


@bp.errorhandler(405)
def not_allowed(_exc: Exception) -> Response:
    return problem(405, f"{request.method} is not supported here")


class BadBody(Exception):
    """The request's body is not a JSON document this API reads."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _run(work: Callable[[AccountService], Response]) -> Response:
    """``work``'s answer, or the problem that stopped it."""
    try:
        return work(_accounts())
    except BadBody as exc:
        return problem(exc.status, str(exc))
    except Invalid as exc:
        fields = [{"field": p.field, "detail": p.detail} for p in exc.problems]
        return problem(422, "some fields were refused", slug="invalid-fields", errors=fields)
    except AccountNotFound:
        return problem(404, "no account has this customer number")
    except VersionMismatch as exc:
        return problem(412, str(exc))
    except DependencyError as exc:
        log.error("provisioning %s %s: %s", request.method, request.endpoint, exc)
        answer = problem(503, "the account store does not answer; send the request again",
                         slug="unavailable")  # fmt: skip
        answer.headers["Retry-After"] = RETRY_AFTER_S
        return answer


def _body() -> Any:
    """The JSON body (at most MAX_BODY_BYTES), parsed."""
    if (request.mimetype or "") not in JSON_TYPES:
        raise BadBody(415, "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    request.max_content_length = MAX_BODY_BYTES  # also bounds a chunked body
    try:
        return json.loads(request.get_data(cache=False))
    except ValueError:
        raise BadBody(400, "the body is not valid JSON (UTF-8)") from None


def _expect() -> Expect:
    """What ``If-Match`` and ``If-None-Match`` require of the account's version."""
    match = request.headers.get("If-Match")
    return Expect(match=_tags(match) if match is not None else None,
                  none_match=_tags(request.headers.get("If-None-Match")))  # fmt: skip


def _tags(header: str | None) -> tuple[str, ...]:
    """The strong entity tags of an ``If-Match``/``If-None-Match`` header, quoted."""
    if not header:
        return ()
    tags = (tag.strip() for tag in header.split(","))
    return tuple(tag for tag in tags if tag == "*" or (tag.startswith('"') and tag.endswith('"')))


def _account(details: AccountDetails, status: int = 200) -> Response:
    body = {
        "customer_number": details.customer_number,
        "name": details.name,
        "phones": list(details.phones),
        "pin_set": details.pin_set,
        "updated_at": details.updated_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    answer = Response(json.dumps(body), status=status, mimetype="application/json")
    answer.headers["ETag"] = details.version
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _services() -> Services:
    services: Services = current_app.extensions["ivr"]
    return services


def _accounts() -> AccountService:
    """The account service on this app's stores (cheap: no connection is opened)."""
    s = _services()
    admin = AccountAdmin(s.pins.engine, s.hasher)
    return AccountService(
        admin=admin,
        eraser=Eraser(admin, s.audit, s.lockout, s.hasher),
        unlocker=Unlocker(ACTOR, SOURCE_API, s.audit, s.lockout, s.hasher),
        policy=s.settings.pin_policy(),
        region=s.settings.server.default_region,
    )
