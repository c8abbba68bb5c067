"""Actions render to the TwiML Twilio expects (compared as parsed XML)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from twilio.twiml.voice_response import VoiceResponse

from ivr import twiml
from ivr.config import PACKAGE_ROOT, RoutingSettings
from ivr.flow import engine
from ivr.flow.actions import Action, Gather, Hangup, Pause, Reason, Route, Say, ScreenPop
from ivr.flow.model import load_flow
from ivr.flow.state import CallStarted, Digits

POP = ScreenPop(
    call_sid="CA" + "a" * 32,
    caller="+4930111111",
    identified=True,
    reason=Reason.VERIFIED,
    topic="payments",
    language="de-DE",
    customer_number="200001",
    name="Anna Alpha",
    claimed_customer_number=None,
    attempts=1,
    verified_at="2026-11-25T12:00:00Z",
)
ENQUEUE = RoutingSettings(mode="enqueue", workflow_sid="WW" + "1" * 32)


def canonical(xml: str) -> str:
    return ET.canonicalize(xml, strip_text=True)


def test_gather_with_barge_in_prompts_and_no_input_redirect() -> None:
    """A Gather holds its Say prompts and is followed by a Redirect to the same action."""
    gather = Gather(
        node="pin",
        seq=3,
        language="de-DE",
        prompts=(Say("Bitte PIN", "de-DE", "Polly.Vicki-Neural"),),
        num_digits=6,
        finish_on_key="#",
        timeout_s=7,
    )
    expected = (
        '<Response><Gather action="/voice/step?node=pin&amp;n=3&amp;lang=de-DE" '
        'actionOnEmptyResult="true" finishOnKey="#" input="dtmf" method="POST" '
        'numDigits="6" timeout="7"><Say language="de-DE" voice="Polly.Vicki-Neural">Bitte PIN'
        '</Say></Gather><Redirect method="POST">/voice/step?node=pin&amp;n=3&amp;lang=de-DE'
        "</Redirect></Response>"
    )
    assert canonical(twiml.render([gather], ENQUEUE)) == canonical(expected)


def test_menu_gather_disables_finish_key() -> None:
    """Without a finish key the Gather sets finishOnKey empty so '#' is not swallowed."""
    gather = Gather(node="menu", seq=1, language="de-DE", prompts=(), num_digits=1)
    root = ET.fromstring(twiml.render([gather], ENQUEUE))
    assert root.find("Gather").get("finishOnKey") == ""  # type: ignore[union-attr]


def test_enqueue_carries_screen_pop_as_task() -> None:
    """enqueue mode: Enqueue with the workflow SID and the screen-pop as Task JSON."""
    root = ET.fromstring(twiml.render([Route(POP), Say("x", "de-DE"), Hangup()], ENQUEUE))
    enqueue = root.find("Enqueue")
    assert enqueue is not None and enqueue.get("workflowSid") == ENQUEUE.workflow_sid
    task = json.loads(enqueue.findtext("Task") or "")
    assert task == {"type": "inbound_call", **POP.to_json()}
    assert [el.tag for el in root] == ["Enqueue", "Say", "Hangup"]


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        (
            RoutingSettings(mode="client", client_identity="agent-1"),
            '<Response><Dial answerOnBridge="true" timeout="30"><Client>'
            "<Identity>agent-1</Identity>"
            f'<Parameter name="call_sid" value="{POP.call_sid}"/>'
            '<Parameter name="identified" value="true"/>'
            '<Parameter name="reason" value="verified"/>'
            '<Parameter name="topic" value="payments"/>'
            '<Parameter name="language" value="de-DE"/>'
            '<Parameter name="customer_number" value="200001"/>'
            "</Client></Dial></Response>",
        ),
        (
            RoutingSettings(mode="sip", sip_uri="sip:agents@pbx.example.com"),
            '<Response><Dial answerOnBridge="true" timeout="30"><Sip>'
            f"sip:agents@pbx.example.com?X-IVR-Call-Sid={POP.call_sid}&amp;"
            "X-IVR-Identified=true&amp;X-IVR-Reason=verified&amp;X-IVR-Topic=payments&amp;"
            "X-IVR-Language=de-DE&amp;X-IVR-Customer-Number=200001</Sip></Dial></Response>",
        ),
        (
            RoutingSettings(mode="number", number="+4930123123"),
            '<Response><Dial answerOnBridge="true" timeout="30"><Number>+4930123123</Number>'
            "</Dial></Response>",
        ),
    ],
    ids=["client", "sip", "number"],
)
def test_dial_modes(routing: RoutingSettings, expected: str) -> None:
    """client, sip and number modes render the documented Dial shapes."""
    assert canonical(twiml.render([Route(POP)], routing)) == canonical(expected)


def test_not_identified_flag_omits_customer_number() -> None:
    """A not-identified route carries identified=false and no customer number."""
    pop = ScreenPop(**{**POP.__dict__, "identified": False, "reason": Reason.WRONG_PIN})
    params = twiml.flag_parameters(pop)
    assert params["identified"] == "false" and "customer_number" not in params


def test_sip_uri_appends_to_existing_query() -> None:
    """A SIP URI that already has parameters gets the headers appended with '&'."""
    uri = twiml.sip_uri("sip:q@pbx?X-Queue=1", POP)
    assert uri.startswith("sip:q@pbx?X-Queue=1&X-IVR-Call-Sid=")


def test_pause_and_hangup() -> None:
    """Pause and Hangup render as themselves."""
    root = ET.fromstring(twiml.render([Pause(2), Hangup()], ENQUEUE))
    assert [el.tag for el in root] == ["Pause", "Hangup"] and root[0].get("length") == "2"


def test_cached_fragments_render_like_fresh_ones() -> None:
    """A reused Renderer gives the same TwiML as a fresh render for every step counter."""
    renderer = twiml.Renderer(ENQUEUE)
    say = Say("Hallo", "de-DE", "Polly.Vicki-Neural")
    for seq in (1, 2, 17, 1):
        gather = Gather(node="pin", seq=seq, language="de-DE", prompts=(say,), num_digits=6)
        actions: list[Action] = [say, gather]
        assert renderer.render(actions) == twiml.render(actions, ENQUEUE)
        assert f"n={seq}&amp;" in renderer.render(actions)


def test_routes_are_rendered_per_call() -> None:
    """Routes carry each caller's screen-pop and are never served from the cache."""
    renderer = twiml.Renderer(ENQUEUE)
    other = ScreenPop(**{**POP.__dict__, "call_sid": "CA" + "b" * 32, "identified": False})
    first = renderer.render([Route(POP)])
    second = renderer.render([Route(other)])
    assert POP.call_sid in first and other.call_sid in second and first != second


@pytest.mark.parametrize(
    "name",
    ["Anna Alpha", 'Ünal "Dr." <Öz> & Söhne', "a]]>b", "line\nbreak\ttab", "\u2028 \U0001f600"],
)
def test_templated_enqueue_equals_the_helper_library(name: str) -> None:
    """The cached <Enqueue> with each call's task escaped in equals the helper's own TwiML."""
    pop = ScreenPop(**{**POP.__dict__, "name": name, "claimed_customer_number": name})
    response = VoiceResponse()
    twiml._route(response, pop, ENQUEUE)  # noqa: SLF001 - the helper library's rendering
    assert twiml.Renderer(ENQUEUE).render([Route(pop)]) == str(response)
    task = ET.fromstring(str(response)).find("Enqueue/Task")
    assert task is not None and json.loads(task.text or "")["name"] == name


DE = 'language="de-DE" voice="Polly.Vicki-Neural"'
EN = 'language="en-US" voice="Polly.Joanna-Neural"'


@pytest.mark.parametrize(
    ("presses", "expected"),
    [
        (
            [],
            '<Response><Gather action="/voice/step?node=menu&amp;n=1&amp;lang=de-DE" '
            'actionOnEmptyResult="true" finishOnKey="" input="dtmf" method="POST" '
            f'numDigits="1" timeout="6"><Say {DE}>Herzlich willkommen bei unserem '
            f"Kundenservice.</Say><Say {DE}>Für Zahlungen, Rechnungen oder Kontodaten drücken "
            "Sie die 1. Für Vertragsdaten drücken Sie die 2. Für eine Kündigung oder eine "
            "Datenauskunft drücken Sie die 3. Für alle anderen Anliegen drücken Sie die 0."
            f"</Say><Say {EN}>For English, please press 9.</Say><Say {DE}>Um dieses Menü zu "
            "wiederholen, drücken Sie die Sterntaste.</Say></Gather>"
            '<Redirect method="POST">/voice/step?node=menu&amp;n=1&amp;lang=de-DE</Redirect>'
            "</Response>",
        ),
        (
            ["9"],
            '<Response><Gather action="/voice/step?node=menu&amp;n=2&amp;lang=en-US" '
            'actionOnEmptyResult="true" finishOnKey="" input="dtmf" method="POST" '
            f'numDigits="1" timeout="6"><Say {EN}>For payments, invoices or account data, '
            "press 1. For contract details, press 2. For cancellations or data requests, "
            f"press 3. For anything else, press 0.</Say><Say {DE}>Für Deutsch drücken Sie "
            f"bitte die 9.</Say><Say {EN}>To hear this menu again, press the star key.</Say>"
            '</Gather><Redirect method="POST">/voice/step?node=menu&amp;n=2&amp;lang=en-US'
            "</Redirect></Response>",
        ),
    ],
    ids=["german menu", "english menu"],
)
def test_menu_offers_the_other_language_in_that_voice(presses: list[str], expected: str) -> None:
    """The shipped menus speak the offer of the other language in that language's voice."""
    flow = load_flow(PACKAGE_ROOT / "flows" / "service_pin.toml", pin_length=6, attempts_per_call=3)
    step = engine.advance(flow, None, CallStarted(POP.call_sid, POP.caller, "2026-11-25T12:00:00Z"))
    for key in presses:
        step = engine.advance(flow, step.state, Digits(step.state.node, step.state.seq, key))
    assert canonical(twiml.render(step.actions, ENQUEUE)) == canonical(expected)
