"""HTTP the way Twilio does it: signed webhooks, one cookie jar per call.

Twilio signs each request over the URL *it* called (the public URL, e.g. the ngrok or
proxy address) with the account's auth token. The terminal phone does the same and then
sends the request to where the service really listens (``local_base``), so the service's
own signature check runs exactly as in production.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

from twilio.request_validator import RequestValidator

from ivr.exceptions import IVRError

TWILIO_WEBHOOK_TIMEOUT_S = 15.0  # Twilio gives up on a webhook after 15 seconds


class WebhookError(IVRError):
    """A request of the call failed; the message is one line that names the fix."""


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for ``params`` posted to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


@dataclass(frozen=True)
class Endpoint:
    """Where the service listens (``local_base``) and the URL Twilio would call."""

    local_base: str
    public_base: str

    def public(self, ref: str, current: str | None = None) -> str:
        """``ref`` (absolute, or relative to the ``current`` document) as a public URL."""
        return urljoin(current or self.public_base.rstrip("/") + "/", ref)

    def local(self, public_url: str) -> str:
        """Where to send a request for ``public_url``."""
        base = self.public_base.rstrip("/")
        if public_url == base or public_url.startswith(base + "/"):
            return self.local_base.rstrip("/") + public_url[len(base) :]
        return public_url


class Transport:
    """Signed requests of one call; cookies set by the service travel with the call."""

    def __init__(
        self, endpoint: Endpoint, auth_token: str, timeout_s: float = TWILIO_WEBHOOK_TIMEOUT_S
    ) -> None:
        self.endpoint = endpoint
        self._token = auth_token
        self._timeout = timeout_s
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def webhook(self, public_url: str, method: str, params: Mapping[str, str]) -> str:
        """Request ``public_url`` like Twilio; the body (TwiML) of a 2xx answer."""
        if method == "GET":
            sep = "&" if "?" in public_url else "?"
            public_url, data = public_url + sep + urlencode(params), None
            signature = sign(self._token, public_url, {})
        else:
            data = urlencode(params).encode()
            signature = sign(self._token, public_url, params)
        request = urllib.request.Request(  # noqa: S310 - _send allows http(s) only
            self.endpoint.local(public_url),
            data=data,
            method=method,
            headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (ivr call)"},
        )
        status, body = self._send(request, public_url)
        if status == 403:
            raise WebhookError(
                f"{public_url} answered 403: signature mismatch; use the service's config "
                "(--config: same [twilio] auth_token) and the URL it validates against "
                "(--public-url / [server] public_base_url)"
            )
        if not 200 <= status < 300:
            raise WebhookError(
                f"{public_url} answered HTTP {status}; Twilio would play 'an application "
                "error has occurred' and try the fallback URL: check the service's log"
            )
        return body

    def get_json(self, path: str, bearer: str) -> tuple[int, Any]:
        """GET ``path`` of the service with a bearer token: (status, parsed JSON or None)."""
        url = self.endpoint.local_base.rstrip("/") + path
        headers = {"Authorization": f"Bearer {bearer}"}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) only
        status, body = self._send(request, url)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def _send(self, request: urllib.request.Request, shown: str) -> tuple[int, str]:
        if request.type not in ("http", "https"):
            raise WebhookError(f"{shown}: only http:// and https:// URLs can be called")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), exc.read().decode("utf-8", "replace")
        except TimeoutError:
            raise self._timed_out(shown) from None
        except (urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise self._timed_out(shown) from None
            raise WebhookError(
                f"cannot reach the service at {self.endpoint.local_base} ({reason}): "
                "start it with `ivr dev`, or pass --url"
            ) from None

    def _timed_out(self, shown: str) -> WebhookError:
        return WebhookError(
            f"no answer from {shown} within {self._timeout:g} s (Twilio's webhook timeout): "
            "the service is stuck or too slow; check its log and its Redis"
        )
