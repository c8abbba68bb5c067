"""``GET /api/calls/<CallSid>``: the screen-pop JSON, behind ``Authorization: Bearer``."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, current_app, jsonify, request

from ivr.board import call_payload
from ivr.exceptions import DependencyError
from ivr.services import Services

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger("ivr.web.api")


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
    return response


@bp.before_request
def require_token() -> Response | None:
    """404 when the API is turned off, 401 without credentials, 403 with wrong ones."""
    services: Services = current_app.extensions["ivr"]
    if not services.settings.api.enabled:
        return _error(404, "the screen-pop API is turned off ([api] enabled)")
    return bearer_error(services.settings.api.token)


def bearer_error(expected: str) -> Response | None:
    """The 401/403 answer unless the request carries ``Bearer <expected>``; else None."""
    refused = bearer_refusal(expected)
    if refused == 401:
        return _error(401, "bearer token required")
    if refused == 403:
        return _error(403, "invalid token")
    return None


def bearer_refusal(expected: str) -> int | None:
    """401 without a bearer token, 403 with another one than ``expected`` (or when none
    is expected), None when the request carries ``Bearer <expected>``."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401
    if not expected or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return 403
    return None


@bp.get("/calls/<call_sid>")
def call(call_sid: str) -> Response:
    """The screen-pop of one call (SPEC §4), plus whether it has been routed yet."""
    services: Services = current_app.extensions["ivr"]
    try:
        state, call_status = services.calls.screen_pop(call_sid)
    except DependencyError:
        log.error("api call=%s: Redis unavailable", call_sid)
        return _error(503, "call state unavailable")
    if state is None:
        return _error(404, "unknown call")
    return jsonify(call_payload(state, call_status))
