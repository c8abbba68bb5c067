"""Garbage in webhook parameters always gets valid TwiML that reaches an agent (hypothesis)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import urlencode

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import AUTH_TOKEN
from tests.twilio_phone import Call, sign

Phone = Callable[..., Call]
text = st.text(max_size=60)
maybe_text = st.one_of(st.none(), text)
GARBAGE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def post_signed(client: FlaskClient, path: str, params: dict[str, str]) -> ET.Element:
    url = "https://ivr.example.com" + path
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, params)}
    response = client.post(path, data=params, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    return root


def keeps_caller_connected(root: ET.Element) -> bool:
    """Either the caller is asked something or handed to an agent: never silence."""
    return root.find("Gather") is not None or root.find("Enqueue") is not None


def strip_controls(value: str | None) -> str | None:
    # Form encoding cannot carry every code point the same way Twilio does; keep printable.
    return None if value is None else "".join(ch for ch in value if ch.isprintable())


@GARBAGE
@given(digits=maybe_text, node=text, seq=text, lang=text)
def test_garbage_step_parameters(
    phone: Phone, client: FlaskClient, digits: str | None, node: str, seq: str, lang: str
) -> None:
    """Any Digits, node, step number and language on a live call answers valid TwiML."""
    call = phone()
    call.start()
    params = call.params()
    clean = strip_controls(digits)
    if clean is not None:
        params["Digits"] = clean
    query = urlencode({"node": strip_controls(node), "n": strip_controls(seq), "lang": lang})
    root = post_signed(client, f"/voice/step?{query}", params)
    assert keeps_caller_connected(root)


@GARBAGE
@given(call_sid=maybe_text, caller=maybe_text, digits=maybe_text)
def test_garbage_call_parameters(
    client: FlaskClient, call_sid: str | None, caller: str | None, digits: str | None
) -> None:
    """Garbage CallSid, From and Digits on /voice and /voice/step answer valid TwiML."""
    params = {
        k: v
        for k, v in {
            "CallSid": strip_controls(call_sid),
            "From": strip_controls(caller),
            "Digits": strip_controls(digits),
        }.items()
        if v is not None
    }
    assert keeps_caller_connected(post_signed(client, "/voice", params))
    step = post_signed(client, "/voice/step?node=menu&n=1&lang=de-DE", params)
    assert keeps_caller_connected(step)
