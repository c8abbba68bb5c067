"""X-Twilio-Signature validation against the URL Twilio actually called.

Behind ngrok or a TLS-terminating proxy, Flask sees ``http://127.0.0.1:8000/voice``
while Twilio signed ``https://abc.ngrok.app/voice``; validating against the former is
the classic 403. The public URL is therefore ``[server] public_base_url`` + path + query,
or, when that is empty and forwarded headers are trusted, rebuilt from
``X-Forwarded-Proto`` / ``X-Forwarded-Host``. Trusting those headers cannot weaken the
check: a forged header only changes which URL the HMAC must match, and the HMAC still
needs the auth token.

The HMAC is computed here rather than by ``RequestValidator.compute_signature``, exactly as
that function does it, over the fields :mod:`ivr.web.form` parsed once for the request:
the helper iterates a werkzeug MultiDict slowly and rebuilds the HMAC key every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlparse

from flask import Request
from twilio.request_validator import add_port, remove_port

from ivr.config import Settings
from ivr.web import form
from ivr.web.form import Params

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


class Signer:
    """Twilio's webhook signature (HMAC-SHA1, base64), keyed once with the auth token."""

    def __init__(self, auth_token: str) -> None:
        # Each request copies this keyed state instead of re-deriving the key pads.
        self._keyed = hmac.new(auth_token.encode("utf-8"), digestmod=hashlib.sha1)

    def compute(self, url: str, params: Params) -> str:
        """What ``RequestValidator.compute_signature(url, params)`` returns."""
        return self.digest(url + signed_fields(params)).decode("ascii")

    def digest(self, text: str) -> bytes:
        """The base64 HMAC of ``text`` (the URL followed by :func:`signed_fields`)."""
        mac = self._keyed.copy()
        mac.update(text.encode("utf-8"))
        return base64.b64encode(mac.digest())


class SignatureChecker:
    """Validates requests with the auth token; built once per app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._signer = Signer(settings.twilio.auth_token)

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
        fields = signed_fields(form.form(request))
        given = signature.encode("utf-8")
        # Twilio's own validate() always computes two HMACs (URL with and without the
        # default port). Compute the one for the URL as configured first; the variant
        # only matters when that fails, so a valid request costs one HMAC.
        if hmac.compare_digest(self._signer.digest(url + fields), given):
            return True
        return hmac.compare_digest(self._signer.digest(port_variant(url) + fields), given)


def signed_fields(params: Params) -> str:
    """The fields as Twilio appends them to the URL before signing.

    Keys in sorted order, each followed by its distinct values, sorted: the helper
    library's ``sorted(set(...))`` for both, so a value repeated under one key counts once.
    """
    parts: list[str] = []
    for key, values in sorted(params.lists()):
        if len(values) == 1:  # nearly every Twilio field: no set, no sort
            parts.append(key + values[0])
        else:
            parts.extend([key + value for value in sorted(set(values))])
    return "".join(parts)


def port_variant(url: str) -> str:
    """``url`` with its default port removed if present, added if absent."""
    parsed = urlparse(url)
    return str(remove_port(parsed) if parsed.port else add_port(parsed))
