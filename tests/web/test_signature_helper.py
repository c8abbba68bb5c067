"""Our X-Twilio-Signature equals Twilio's helper library's; the app accepts what it signs.

Every expected signature comes from ``RequestValidator.compute_signature``, never from
our own code, so these tests pin our fast HMAC to the reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from ivr.web import form
from ivr.web.signature import Signer
from tests.conftest import AUTH_TOKEN
from tests.twilio_phone import Call, sign

Phone = Callable[..., Call]


def call_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter("ivr:call:*"))


TRICKY_PARAMS: list[list[tuple[str, str]]] = [
    [],
    [("CallSid", "CA" + "1" * 32), ("From", "+4930111111"), ("Digits", "123456")],
    [("a", "2"), ("a", "1"), ("a", "2")],  # repeated key, a repeated value counts once
    [("Name", "Zoë Müller"), ("City", "Düsseldorf 😀"), ("€", "ǅ")],
    [("plus", "+"), ("escaped", "%2B"), ("both", "+%2B+"), ("pct", "100%")],
    [("empty", ""), ("", "nameless"), ("e2", "")],
    [("key", "1"), ("Key", "2"), ("KEY", "3"), ("kEy", "4")],  # case-sensitive sort
    [("ab", "c"), ("a", "bc"), ("a", "b"), ("abc", "")],
    [("msg", "Gather End"), ("FinishedOnKey", "#"), ("amp", "a&b=c")],
]
URLS = [
    "https://ivr.example.com/voice",
    "https://ivr.example.com:443/voice",
    "http://localhost:8000/voice/step?node=pin&n=3&lang=de-DE",
    "https://abc.ngrok.app/voice/step?node=menu&n=1&x=%2B+y",
    "https://ivr.example.com/voice?q=Zo%C3%AB",
]
pairs = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=12)


def signed_request(url: str, items: list[tuple[str, str]]) -> str:
    """The X-Twilio-Signature Twilio's helper library computes for ``items`` at ``url``."""
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, MultiDict(items)))


def ours(url: str, items: list[tuple[str, str]]) -> str:
    """Our signature over the pairs as our parser reads them from the posted body."""
    return Signer(AUTH_TOKEN).compute(url, form.parse(urlencode(items).encode()))


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("items", TRICKY_PARAMS)
def test_signature_equals_twilio_helper(url: str, items: list[tuple[str, str]]) -> None:
    """For tricky parameters and URLs our HMAC equals RequestValidator.compute_signature."""
    assert ours(url, items) == signed_request(url, items)


@given(items=pairs)
def test_signature_equals_twilio_helper_for_any_params(items: list[tuple[str, str]]) -> None:
    """For any keys and values (any code points) our HMAC equals the helper library's."""
    url = "https://ivr.example.com/voice/step?node=pin&n=1"
    assert ours(url, items) == signed_request(url, items)


def test_signature_equals_twilio_helper_for_plain_dict() -> None:
    """Signing a plain dict (how tests/phone_sim sign) gives the same as our form."""
    params = {"CallSid": "CA" + "1" * 32, "From": "+4930111111", "Name": "Zoë + %2B"}
    url = "https://ivr.example.com/voice"
    assert ours(url, list(params.items())) == sign(AUTH_TOKEN, url, params)


def post_pairs(client: FlaskClient, path: str, items: list[tuple[str, str]], signature: str) -> int:
    """POST ``items`` urlencoded, in order, and return the status code."""
    response = client.post(
        path,
        data=urlencode(items),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    return response.status_code


@pytest.mark.parametrize("extra", TRICKY_PARAMS)
def test_helper_signed_request_passes_the_app(
    client: FlaskClient, phone: Phone, extra: list[tuple[str, str]]
) -> None:
    """A call carrying tricky extra fields, signed by the helper library, is answered."""
    items = list(phone().params().items()) + extra
    signature = signed_request("https://ivr.example.com/voice", items)
    assert post_pairs(client, "/voice", items, signature) == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda items: [*items, ("Extra", "1")],  # a field added
        lambda items: items[1:],  # a field removed
        lambda items: [*items, ("Digits", "999999")],  # a second value for a key
        lambda items: [(k, v + " ") if k == "From" else (k, v) for k, v in items],
        lambda items: [(k.lower(), v) if k == "From" else (k, v) for k, v in items],
        lambda items: [(k, "%2B" + v[1:]) if k == "From" else (k, v) for k, v in items],
    ],
    ids=["added", "removed", "repeated", "value", "key-case", "plus-escaped"],
)
def test_tampered_body_is_403_and_stores_nothing(
    client: FlaskClient,
    phone: Phone,
    redis_client: redis.Redis,
    tamper: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
) -> None:
    """Any change to the signed fields after signing is refused and stores no call."""
    items = list(phone().params(Digits="123456").items())
    signature = signed_request("https://ivr.example.com/voice", items)
    assert post_pairs(client, "/voice", tamper(items), signature) == 403
    assert call_keys(redis_client) == []


def test_tampered_query_is_403(client: FlaskClient, phone: Phone) -> None:
    """A query-string parameter changed after signing is refused."""
    items = list(phone().params().items())
    signature = signed_request("https://ivr.example.com/voice/step?node=menu&n=1", items)
    assert post_pairs(client, "/voice/step?node=menu&n=1", items, signature) == 200
    assert post_pairs(client, "/voice/step?node=pin&n=1", items, signature) == 403


def test_fields_in_another_content_type_are_not_signed_fields(
    client: FlaskClient, phone: Phone
) -> None:
    """Fields sent as text/plain are not read, so a signature over them fails."""
    items = list(phone().params().items())
    signature = signed_request("https://ivr.example.com/voice", items)
    response = client.post(
        "/voice",
        data=urlencode(items),
        content_type="text/plain",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403


def test_undecodable_body_counts_as_no_fields(client: FlaskClient) -> None:
    """A non-UTF-8 body is read as no fields: TwiML if signed that way, else 403."""
    url = "https://ivr.example.com/voice"

    def post(signature: str) -> TestResponse:
        return client.post(
            "/voice",
            data=b"CallSid=CA\xff&From=%2B4930111111",
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )

    answered = post(signed_request(url, []))
    assert (answered.status_code, answered.mimetype) == (200, "text/xml")
    replaced = [("CallSid", "CA\ufffd"), ("From", "+4930111111")]
    assert post(signed_request(url, replaced)).status_code == 403
