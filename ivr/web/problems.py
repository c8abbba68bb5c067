"""RFC 9457 problem details: every error of the provisioning API, as JSON.

``type`` is ``about:blank`` where the HTTP status says it all (its ``title`` is the
status phrase); the API's own problems have a ``urn:ivr:problem:<slug>`` type, listed
in the OpenAPI document. A detail never quotes a PIN.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, json

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:ivr:problem:"


def problem(status: int, detail: str, *, slug: str | None = None, **extra: Any) -> Response:
    """A problem-details answer with ``status``; ``slug`` names an API-specific type."""
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": slug.replace("-", " ").capitalize() if slug else phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
