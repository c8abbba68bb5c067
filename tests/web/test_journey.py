"""The caller journey of SPEC §3 end to end, through signed webhooks and real stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ACCOUNTS, SHARED_NUMBER, SINGLE_OWNER, UNKNOWN_NUMBER
from tests.twilio_phone import Call, Twiml, parse_task

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
PIN_BERND = ACCOUNTS[1][3]


def gather_attrs(twiml: Twiml) -> dict[str, str]:
    assert twiml.gather is not None, twiml.text()
    return dict(twiml.gather.attrib)


def test_welcome_is_one_digit_menu_spoken_inside_gather(phone: Phone) -> None:
    """The first answer is a one-digit Gather whose prompts are inside it (barge-in)."""
    twiml = phone().start()
    assert twiml.verbs[0] == "Gather"
    attrs = gather_attrs(twiml)
    assert attrs["numDigits"] == "1"
    assert attrs["input"] == "dtmf"
    assert twiml.gather is not None and len(twiml.gather.findall("Say")) >= 1
    # German, but for "For English, please press 9." (spoken in English)
    assert [say.get("language") for say in twiml.gather.iter("Say")] == [
        "de-DE", "de-DE", "en-US", "de-DE"
    ]  # fmt: skip
    # No-input fallback: a Redirect to the same action follows the Gather.
    assert twiml.verbs[1] == "Redirect"


def test_identified_by_caller_number_and_pin(phone: Phone) -> None:
    """A caller whose number has one account is identified by PIN alone."""
    call = phone(caller=SINGLE_OWNER)
    pin_prompt = call.walk("1")
    attrs = gather_attrs(pin_prompt)
    assert attrs["numDigits"] == "6" and attrs["finishOnKey"] == "#"
    routed = call.press(PIN_ANNA)
    task = parse_task(routed)
    assert task["identified"] is True
    assert task["reason"] == "verified"
    assert task["customer_number"] == "200001"
    assert task["name"] == "Anna Alpha"
    assert task["topic"] == "payments"
    assert task["language"] == "de-DE"
    assert task["attempts"] == 1
    assert task["verified_at"]


def test_pin_with_hash_key_is_accepted(phone: Phone) -> None:
    """Callers who end the PIN with '#' are identified too (finishOnKey habit)."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("2")
    assert parse_task(call.press(PIN_ANNA + "#"))["identified"] is True


@pytest.mark.parametrize("caller", [SHARED_NUMBER, UNKNOWN_NUMBER, "anonymous", "+266696687", ""])
def test_customer_number_asked_when_number_does_not_identify(phone: Phone, caller: str) -> None:
    """Shared, unknown and withheld numbers are asked for the customer number, then the PIN."""
    call = phone(caller=caller)
    ask = call.walk("3")
    attrs = gather_attrs(ask)
    assert attrs["finishOnKey"] == "#" and "numDigits" not in attrs
    pin = call.press("200002#")
    assert gather_attrs(pin)["numDigits"] == "6"
    task = parse_task(call.press(PIN_BERND))
    assert task["identified"] is True and task["customer_number"] == "200002"
    assert task["topic"] == "cancellation"


def test_english_journey(phone: Phone) -> None:
    """Key 9 replays the menu in English and the rest of the call stays English."""
    call = phone(caller=SINGLE_OWNER)
    english = call.walk("9")
    # English, but for the offer to switch back to German (spoken in German)
    assert [say.get("language") for say in english.root.iter("Say")] == ["en-US", "de-DE", "en-US"]
    pin = call.press("1")
    assert pin.languages() == {"en-US"}
    routed = call.press(PIN_ANNA)
    assert routed.languages() == {"en-US"}
    task = parse_task(routed)
    assert task["language"] == "en-US" and task["identified"] is True


def test_star_repeats_menu(phone: Phone) -> None:
    """'*' repeats the menu in the same language without routing."""
    call = phone()
    again = call.walk("*")
    assert again.gather is not None and gather_attrs(again)["numDigits"] == "1"
    assert not again.routed


def test_zero_routes_without_identification(phone: Phone) -> None:
    """'0' needs no identification: routed at once, not identified, reason not_required."""
    task = parse_task(phone().walk("0"))
    assert task["identified"] is False and task["reason"] == "not_required"
    assert task["customer_number"] is None and task["name"] is None


def test_three_wrong_pins_route_not_identified(phone: Phone) -> None:
    """After attempts_per_call wrong PINs the caller reaches an agent, not identified."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    retry1 = call.press("000000")
    retry2 = call.press("000001")
    assert retry1.gather is not None and retry2.gather is not None
    routed = call.press("000002")
    task = parse_task(routed)
    assert task["identified"] is False and task["reason"] == "wrong_pin"
    assert task["attempts"] == 3
    assert task["customer_number"] is None and task["name"] is None
    assert task["claimed_customer_number"] == "200001"


def test_wrong_then_right_pin(phone: Phone) -> None:
    """A wrong PIN followed by the right one identifies the caller with two attempts."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1", "999999")
    task = parse_task(call.press(PIN_ANNA))
    assert task["identified"] is True and task["attempts"] == 2


@pytest.mark.parametrize("node_keys", [("",), ("5",), ("1", ""), ("1", "12")])
def test_no_input_and_invalid_keys_reprompt_twice_then_route(
    phone: Phone, node_keys: tuple[str, ...]
) -> None:
    """Silence or invalid keys re-prompt twice, then route as not identified (no_input)."""
    call = phone(caller=SINGLE_OWNER)
    *before, bad = node_keys
    twiml = call.walk(*before)
    for _ in range(2):
        twiml = call.press(bad) if bad else call.silence()
        assert twiml.gather is not None, "re-prompt expected"
    final = call.press(bad) if bad else call.silence()
    task = parse_task(final)
    assert task["identified"] is False and task["reason"] == "no_input"


def test_every_route_ends_with_a_spoken_fallback(phone: Phone) -> None:
    """After the agent leg the caller hears a message, never silence, then the call ends."""
    routed = phone().walk("0")
    assert routed.verbs[-1] == "Hangup"
    assert routed.verbs[-2] == "Say"


def test_step_urls_carry_node_sequence_and_language(phone: Phone) -> None:
    """Gather actions name the node, the step counter and the language."""
    call = phone()
    call.start()
    query = parse_qs(urlsplit(call.action_url()).query)
    assert query["node"] == ["menu"] and query["n"] == ["1"] and query["lang"] == ["de-DE"]


ROUTING_MODES: list[tuple[dict[str, Any], str]] = [
    ({"mode": "client", "client_identity": "agents"}, "client"),
    ({"mode": "sip", "sip_uri": "sip:agents@pbx.example.com"}, "sip"),
    ({"mode": "number", "number": "+4930123123"}, "number"),
]


@pytest.mark.parametrize(
    "overrides", [{"routing": r} for r, _ in ROUTING_MODES], ids=[m for _, m in ROUTING_MODES]
)
def test_routing_modes_carry_the_flag(phone: Phone, overrides: dict[str, Any]) -> None:
    """Every routing mode reaches an agent; client and sip carry the identified flag."""
    call = phone(caller=SINGLE_OWNER)
    call.walk("1")
    routed = call.press(PIN_ANNA)
    mode = overrides["routing"]["mode"]
    dial = routed.root.find("Dial")
    assert dial is not None
    if mode == "client":
        params = {p.get("name"): p.get("value") for p in dial.iter("Parameter")}
        assert dial.findtext("Client/Identity") == "agents"
        assert params["identified"] == "true" and params["customer_number"] == "200001"
    elif mode == "sip":
        uri = dial.findtext("Sip") or ""
        assert uri.startswith("sip:agents@pbx.example.com?")
        assert "X-IVR-Identified=true" in uri and "X-IVR-Reason=verified" in uri
    else:
        assert dial.findtext("Number") == "+4930123123"
