"""X-Twilio-Signature: forged, missing and tampered requests change nothing; proxies work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import AUTH_TOKEN, SINGLE_OWNER
from tests.twilio_phone import Call, sign

Phone = Callable[..., Call]


def call_keys(client: redis.Redis) -> list[bytes]:
    return [k for k in client.scan_iter("ivr:call:*")]


def test_missing_signature_is_403_and_stores_nothing(
    client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """A request without X-Twilio-Signature is refused and no call state appears."""
    call = phone()
    response = client.post("/voice", data=call.params())
    assert response.status_code == 403
    assert call_keys(redis_client) == []


def test_forged_signature_is_403(
    client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """A signature made with another auth token is refused."""
    call = phone()
    params = call.params()
    forged = sign("not-the-token-0123456789", "https://ivr.example.com/voice", params)
    response = client.post("/voice", data=params, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403
    assert call_keys(redis_client) == []


def test_tampered_digits_are_403_and_state_unchanged(
    client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """Changing Digits after signing is refused and the call's state stays as it was."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    before = redis_client.get(f"ivr:call:{{{call.call_sid}}}")
    url = "https://ivr.example.com" + call.action_url()
    params = call.params(Digits="000000")
    signature = sign(AUTH_TOKEN, url, params)
    params["Digits"] = "123456"
    response = client.post(
        call.action_url(), data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    assert redis_client.get(f"ivr:call:{{{call.call_sid}}}") == before


def test_signature_for_another_url_is_403(client: FlaskClient, phone: Phone) -> None:
    """A valid signature for a different URL (e.g. the query changed) is refused."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    params = call.params(Digits="123456")
    signature = sign(AUTH_TOKEN, "https://ivr.example.com/voice/step?node=pin&n=9", params)
    response = client.post(
        call.action_url(), data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/voice", "/voice/step", "/voice/status", "/voice/fallback"])
def test_every_voice_endpoint_checks_the_signature(client: FlaskClient, path: str) -> None:
    """All voice endpoints refuse unsigned requests."""
    assert client.post(path, data={"CallSid": "CA" + "1" * 32}).status_code == 403


@pytest.mark.parametrize("overrides", [{"server": {"public_base_url": ""}}])
def test_forwarded_headers_rebuild_public_url(client: FlaskClient, phone: Phone) -> None:
    """Behind a TLS proxy, X-Forwarded-Proto/Host give the URL Twilio signed (no 403)."""
    call = phone(base="https://abc123.ngrok.app")
    params = call.params()
    signature = sign(AUTH_TOKEN, "https://abc123.ngrok.app/voice", params)
    headers = {
        "X-Twilio-Signature": signature,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "abc123.ngrok.app",
    }
    assert client.post("/voice", data=params, headers=headers).status_code == 200
    # Without the proxy headers the same request is what the classic 403 looks like.
    del headers["X-Forwarded-Proto"], headers["X-Forwarded-Host"]
    assert client.post("/voice", data=params, headers=headers).status_code == 403


@pytest.mark.parametrize(
    "overrides",
    [{"server": {"public_base_url": "", "trust_forwarded_headers": False}}],
)
def test_untrusted_forwarded_headers_are_ignored(client: FlaskClient, phone: Phone) -> None:
    """With trust_forwarded_headers off, only the URL the app itself saw validates."""
    call = phone(base="http://localhost")
    params = call.params()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc123.ngrok.app"}
    proxied = sign(AUTH_TOKEN, "https://abc123.ngrok.app/voice", params)
    response = client.post(
        "/voice", data=params, headers={**headers, "X-Twilio-Signature": proxied}
    )
    assert response.status_code == 403
    assert call.start().status == 200


@pytest.mark.parametrize(
    "overrides", [{"server": {"public_base_url": "https://ivr.example.com:443"}}]
)
def test_port_in_public_url_is_tolerated(client: FlaskClient, phone: Phone) -> None:
    """Twilio may sign with or without the default port; both validate."""
    call = phone(base="https://ivr.example.com")
    assert call.start().status == 200


def test_status_callback_is_recorded(phone: Phone, client: FlaskClient) -> None:
    """A signed status callback answers 204 and the API shows the call status."""
    call = phone()
    call.start()
    assert call.hang_up().status_code == 204


def test_signature_checks_can_be_disabled_for_local_use(
    settings: Any, services: Any, phone: Phone
) -> None:
    """validate_signatures = false lets unsigned requests through (dev only, warned)."""
    import dataclasses

    from ivr import create_app

    relaxed = dataclasses.replace(
        settings, twilio=dataclasses.replace(settings.twilio, validate_signatures=False)
    )
    app = create_app(relaxed, services)
    response = app.test_client().post("/voice", data=phone().params())
    assert response.status_code == 200


def test_signature_over_url_with_default_port_validates(client: FlaskClient, phone: Phone) -> None:
    """A signature Twilio computed over the URL with :443 still validates."""
    call = phone()
    params = call.params()
    signature = sign(AUTH_TOKEN, "https://ivr.example.com:443/voice", params)
    response = client.post("/voice", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "variant"),
    [
        ("https://a.example/voice?x=1", "https://a.example:443/voice?x=1"),
        ("https://a.example:443/voice", "https://a.example/voice"),
        ("http://a.example/voice", "http://a.example:80/voice"),
    ],
)
def test_port_variant(url: str, variant: str) -> None:
    """The second URL tried adds or removes the scheme's default port."""
    from ivr.web.signature import port_variant

    assert port_variant(url) == variant
