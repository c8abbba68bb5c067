"""X-Twilio-Signature validation against the URL Twilio actually called.

Behind ngrok or a TLS-terminating proxy, Flask sees ``http://127.0.0.1:8000/voice``
while Twilio signed ``https://abc.ngrok.app/voice``; validating against the former is
the classic 403. The public URL is therefore ``[server] public_base_url`` + path + query,
or, when that is empty and forwarded headers are trusted, rebuilt from
``X-Forwarded-Proto`` / ``X-Forwarded-Host``. Trusting those headers cannot weaken the
check: a forged header only changes which URL the HMAC must match, and the HMAC still
needs the auth token.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlparse

from flask import Request
from twilio.request_validator import RequestValidator, add_port, remove_port

from ivr.config import Settings

HEADER = "X-Twilio-Signature"


def public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio called for ``request``, as it computed the signature over it."""
    query = request.query_string.decode("latin-1")
    path_and_query = request.path + (f"?{query}" if query else "")
    base = settings.server.public_base_url.rstrip("/")
    if base:
        return base + path_and_query
    if settings.server.trust_forwarded_headers:
        proto = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or request.host
        return f"{proto}://{host}{request.script_root}{path_and_query}"
    return request.url


def _first(value: str | None) -> str | None:
    # A chain of proxies appends: "https, http" — the first hop is the one Twilio saw.
    if not value:
        return None
    return value.split(",")[0].strip() or None


class SignatureChecker:
    """Validates requests with the auth token; built once per app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._validator = RequestValidator(settings.twilio.auth_token)

    @property
    def enabled(self) -> bool:
        return self._settings.twilio.validate_signatures

    def is_valid(self, request: Request) -> bool:
        """True when the request carries a valid Twilio signature (or checks are off)."""
        if not self.enabled:
            return True
        signature = request.headers.get(HEADER, "")
        if not signature:
            return False
        url = public_url(request, self._settings)
        # Twilio's own validate() always computes two HMACs (URL with and without the
        # default port). Compute the one for the URL as configured first; the variant
        # only matters when that fails, so a valid request costs one HMAC.
        if self._matches(url, request, signature):
            return True
        return self._matches(port_variant(url), request, signature)

    def _matches(self, url: str, request: Request, signature: str) -> bool:
        expected = self._validator.compute_signature(url, request.form)
        return hmac.compare_digest(expected.encode(), signature.encode())


def port_variant(url: str) -> str:
    """``url`` with its default port removed if present, added if absent."""
    parsed = urlparse(url)
    return str(remove_port(parsed) if parsed.port else add_port(parsed))
