"""The webhook form parser reads what werkzeug's ``request.form`` read, once, and safely."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask, request
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from ivr.web import form
from tests.conftest import AUTH_TOKEN
from tests.twilio_phone import PUBLIC_BASE, Call, sign

Phone = Callable[..., Call]
URLENCODED = "application/x-www-form-urlencoded"

# Pieces that exercise every rule of urlencoded parsing, valid or not.
TOKENS = [
    "a", "B", "b", "=", "&", "&&", "+", " ", ";", "%", "%2", "%2B", "%2b", "%20", "%3D",
    "%26", "%25", "%7E", "%C3%A9", "%c3%a9", "é", "€", "😀", "%F0%9F%98%80", "%FF",
    "%E2%82", "%ED%A0%80", "%80", "%C2%85", "%G1", "%%", "\x00",
]  # fmt: skip
bodies = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)

TRICKY_BODIES = [
    "",
    "&",
    "a",
    "a=",
    "=a",
    "=",
    "a=1&a=2&a=1",
    "a=1&&b=2&",
    "a=b=c",
    "From=%2B4930111111&msg=Gather+End",
    "k+e%79=v%2Bw+x",
    "a=%FF&b=%C3%A9&c=%E2%82&d=%ED%A0%80",
    "a=%80&b=%C2%85&c=%7f%7F",
    "a=100%&b=%zz&c=%4",
    "Key=1&key=2&KEY=3",
    "a=1;b=2",
    "n=Zo%C3%AB&n=😀",
]


def werkzeug_form(app: Flask, body: bytes, content_type: str = URLENCODED) -> list[object]:
    """What ``request.form`` held for ``body`` (the parser used before)."""
    with app.test_request_context("/voice", method="POST", data=body, content_type=content_type):
        return list(request.form.lists())


def ours(app: Flask, body: bytes, content_type: str = URLENCODED) -> list[object]:
    with app.test_request_context("/voice", method="POST", data=body, content_type=content_type):
        return [(key, list(values)) for key, values in form.form(request).lists()]


@pytest.fixture
def bare() -> Flask:
    """A Flask app with the product's body limit, no services needed."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    return app


@pytest.mark.parametrize("body", TRICKY_BODIES)
def test_parser_matches_werkzeug_on_tricky_bodies(bare: Flask, body: str) -> None:
    """Keys, values, repeats and their order equal what request.form parsed."""
    assert ours(bare, body.encode()) == werkzeug_form(bare, body.encode())


@given(body=bodies)
def test_parser_matches_werkzeug_on_any_body(body: str) -> None:
    """For any urlencoded text, our parse equals werkzeug's, escapes and all."""
    app = Flask(__name__)
    assert ours(app, body.encode()) == werkzeug_form(app, body.encode())


@given(query=bodies)
def test_query_parser_matches_request_args(query: str) -> None:
    """Query-string parameters equal what request.args parsed."""
    app = Flask(__name__)
    with app.test_request_context("/voice/step", query_string=query):
        expected = list(request.args.lists())
        assert [(k, list(v)) for k, v in form.args(request).lists()] == expected


def test_invalid_utf8_body_has_no_parameters(bare: Flask) -> None:
    """A body that is not UTF-8 yields no parameters, as werkzeug's silent parser did."""
    body = b"CallSid=CA\xff&Digits=1"
    assert ours(bare, body) == [] == werkzeug_form(bare, body)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "multipart/form-data; boundary=x"]
)
def test_other_content_types_are_not_read(bare: Flask, content_type: str) -> None:
    """Only urlencoded bodies carry webhook parameters; anything else is empty."""
    assert ours(bare, b"CallSid=CA1&Digits=1", content_type) == []


def test_charset_parameter_is_accepted(bare: Flask) -> None:
    """A charset on the content type still parses as urlencoded."""
    body = b"Digits=1%2B"
    assert ours(bare, body, URLENCODED + "; charset=utf-8") == [("Digits", ["1+"])]


def test_first_value_and_all_values() -> None:
    """get() returns the first value like MultiDict.get; getall() every value in order."""
    params = form.parse(b"a=1&a=2&b=")
    assert params.get("a") == "1"
    assert params.get("b") == ""
    assert params.get("missing") is None
    assert params.get("missing", "-") == "-"
    assert params.getall("a") == ["1", "2"]
    assert params.getall("missing") == []


def test_repr_shows_no_values() -> None:
    """A Params repr never shows values (they may be digits a caller typed)."""
    assert "123456" not in repr(form.parse(b"Digits=123456"))


def test_request_form_still_works_after_our_parse(bare: Flask) -> None:
    """Reading the body ourselves leaves request.form usable for any other code."""
    with bare.test_request_context("/voice", method="POST", data={"a": "1"}):
        assert form.form(request).get("a") == "1"
        assert request.form.get("a") == "1"


def test_form_parsed_earlier_by_werkzeug_is_reused(bare: Flask) -> None:
    """If other code read request.form first (consuming the body), the fields still arrive."""
    body = b"a=1&a=2&From=%2B4930111111"
    with bare.test_request_context("/voice", method="POST", data=body, content_type=URLENCODED):
        assert request.form.get("a") == "1"
        params = form.form(request)
        assert list(params.lists()) == [("a", ["1", "2"]), ("From", ["+4930111111"])]


def test_body_is_parsed_once_per_request(
    phone: Phone, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature check and the handler share one parse of body and query."""
    call = phone()
    call.start()
    seen: list[bytes] = []
    real = form.parse

    def counting(data: bytes) -> form.Params:
        seen.append(data)
        return real(data)

    monkeypatch.setattr(form, "parse", counting)
    call.press("1")
    assert len(seen) == 2  # the body and the query string, one time each
    assert any(b"CallSid=" in data for data in seen)


def test_oversized_body_is_413_and_changes_nothing(
    client: FlaskClient, phone: Phone, redis_client: redis.Redis
) -> None:
    """A body over MAX_CONTENT_LENGTH is refused before anything is parsed or stored."""
    params = phone().params(Padding="x" * (65 * 1024))
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC_BASE + "/voice", params)}
    response = client.post("/voice", data=params, headers=headers)
    assert response.status_code == 413
    assert list(redis_client.scan_iter("ivr:call:*")) == []
