"""The shipped flow ``flows/service_pin.toml`` implements the caller journey of SPEC §3."""

from __future__ import annotations

import pytest

from ivr.config import PACKAGE_ROOT
from ivr.flow import engine
from ivr.flow.actions import Gather, Reason, Route, Say
from ivr.flow.model import Flow, MenuNode, RouteNode, load_flow
from ivr.flow.state import (
    CallerLookedUp,
    CallStarted,
    CheckCustomerNumber,
    CustomerNumberChecked,
    Digits,
    PinChecked,
    Step,
    Verdict,
)

PATH = PACKAGE_ROOT / "flows" / "service_pin.toml"
CALL_SID = "CA" + "0f" * 16
T0, T1 = "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"


@pytest.fixture(scope="module")
def flow() -> Flow:
    """The default flow with a 6-digit PIN and 3 attempts per call (the default settings)."""
    return load_flow(PATH, pin_length=6, attempts_per_call=3)


def press(flow: Flow, step: Step, digits: str | None) -> Step:
    """Answer the Gather that ends ``step``."""
    gather = step.actions[-1]
    assert isinstance(gather, Gather)
    return engine.advance(flow, step.state, Digits(gather.node, gather.seq, digits))


def spoken(step: Step) -> list[Say]:
    """Every Say of ``step``, Gather prompts included."""
    says: list[Say] = []
    for action in step.actions:
        says += action.prompts if isinstance(action, Gather) else []
        says += [action] if isinstance(action, Say) else []
    return says


def test_default_flow_loads_with_both_languages(flow: Flow) -> None:
    """The default flow is German by default, fully English too, with one voice each."""
    assert flow.default_language == "de-DE"
    assert flow.languages == ("de-DE", "en-US")
    assert flow.voices == {"de-DE": "Polly.Vicki-Neural", "en-US": "Polly.Joanna-Neural"}
    assert flow.max_reprompts == 2


def text(flow: Flow, language: str, key: str) -> str:
    """The prompt ``key`` in ``language`` as one text, its parts joined."""
    return " ".join(part.text for part in flow.prompts[language][key])


def test_every_prompt_exists_in_both_languages(flow: Flow) -> None:
    """Both languages define the same prompt keys, all placeholders filled in."""
    assert flow.prompts["de-DE"].keys() == flow.prompts["en-US"].keys()
    for language, texts in flow.prompts.items():
        for key in texts:
            spoken = text(flow, language, key)
            assert "{" not in spoken and "}" not in spoken and spoken.strip() == spoken


@pytest.mark.parametrize(
    "fragment",
    [
        "Für Zahlungen, Rechnungen oder Kontodaten drücken Sie die 1.",
        "Vertragsdaten drücken Sie die 2.",
        "Kündigung oder eine Datenauskunft drücken Sie die 3.",
        "alle anderen Anliegen drücken Sie die 0.",
        "For English, please press 9.",
        "Um dieses Menü zu wiederholen, drücken Sie die Sterntaste.",
    ],
)
def test_german_menu_offers_every_key(flow: Flow, fragment: str) -> None:
    """The German menu prompt announces each key of SPEC §3."""
    assert fragment in text(flow, "de-DE", "menu")


@pytest.mark.parametrize(
    ("language", "offer", "other"),
    [("de-DE", "For English, please press 9.", "en-US"),
     ("en-US", "Für Deutsch drücken Sie bitte die 9.", "de-DE")],
    ids=["german menu offers english", "english menu offers german"],
)  # fmt: skip
def test_menu_offers_the_other_language_in_its_voice(
    flow: Flow, language: str, offer: str, other: str
) -> None:
    """Each menu offers the other language in that language's voice, the rest in its own."""
    says = flow.says(language, ["menu"])
    assert [(say.language, say.voice) for say in says] == [
        (language, flow.voices[language]), (other, flow.voices[other]),
        (language, flow.voices[language]),
    ]  # fmt: skip
    assert says[1].text == offer


def test_menu_keys_match_the_spec(flow: Flow) -> None:
    """Keys 1-3 need identification, 0 routes as not required, 9 switches between German
    and English, * repeats."""
    menu = flow.nodes[flow.start]
    assert isinstance(menu, MenuNode)
    assert set(menu.keys) == {"1", "2", "3", "0", "9", "*"}
    topics = {d: menu.keys[d].topic for d in "1230"}
    assert topics == {"1": "payments", "2": "contract", "3": "cancellation", "0": "other"}
    assert {menu.keys[d].goto for d in "123"} == {"account"}
    other = flow.nodes[menu.keys["0"].goto]
    assert isinstance(other, RouteNode) and other.reason is Reason.NOT_REQUIRED
    assert menu.keys["9"].goto == flow.start
    assert menu.keys["9"].language_after("de-DE") == "en-US"
    assert menu.keys["9"].language_after("en-US") == "de-DE"
    assert menu.keys["*"].goto == flow.start


def test_pin_prompt_is_the_spec_text(flow: Flow) -> None:
    """The PIN prompt names the length, the '#' key and where to find the Service-PIN."""
    assert text(flow, "de-DE", "pin") == (
        "Bitte geben Sie jetzt Ihre 6-stellige Service-PIN ein und bestätigen Sie mit der "
        "Rautetaste. Sie finden Ihre Service-PIN in Ihrem Kundenkonto unter "
        "Kontoeinstellungen, Benutzerdaten."
    )
    assert text(flow, "de-DE", "pin_retry") == (
        "Die Service-PIN war nicht korrekt. Bitte versuchen Sie es erneut."
    )
    assert "6-digit Service PIN" in text(flow, "en-US", "pin")


def test_every_route_explains_and_has_a_fallback_prompt(flow: Flow) -> None:
    """Every route speaks before connecting and says what to do if nobody answers."""
    routes = [node for node in flow.nodes.values() if isinstance(node, RouteNode)]
    assert {route.reason for route in routes} == set(Reason)
    assert all(route.prompt and route.after for route in routes)


def test_german_journey_with_known_number(flow: Flow) -> None:
    """Topic 1, a single account on the number and a correct PIN route as identified."""
    step = engine.advance(flow, None, CallStarted(CALL_SID, "+4930123456", T0))
    assert spoken(step)[0].text.startswith("Herzlich willkommen")
    step = press(flow, step, "1")
    step = engine.advance(flow, step.state, CallerLookedUp("100042"))
    assert "6-stellige Service-PIN" in spoken(step)[0].text
    step = press(flow, step, "123456")
    step = engine.advance(flow, step.state, PinChecked(Verdict.VERIFIED, T1, "Erika"))
    route = next(a for a in step.actions if isinstance(a, Route))
    assert route.pop.identified and route.pop.customer_number == "100042"
    assert spoken(step)[0].text.startswith("Vielen Dank, Sie wurden erfolgreich identifiziert")


def test_english_journey_withheld_number(flow: Flow) -> None:
    """In English a withheld caller is asked for the customer number, then the PIN."""
    step = engine.advance(flow, None, CallStarted(CALL_SID, None, T0))
    step = press(flow, step, "9")
    assert spoken(step)[0].text.startswith("For payments, invoices or account data, press 1.")
    step = press(flow, step, "3")
    assert spoken(step)[0].text.startswith("Please enter your customer number")
    step = press(flow, step, "100042#")
    assert isinstance(step.need, CheckCustomerNumber)
    step = engine.advance(flow, step.state, CustomerNumberChecked("100042"))
    assert spoken(step)[0].text.startswith("Please enter your 6-digit Service PIN")
    for _ in range(3):
        step = press(flow, step, "000000")
        step = engine.advance(flow, step.state, PinChecked(Verdict.WRONG, T1))
    assert step.state.reason is Reason.WRONG_PIN and step.state.topic == "cancellation"
    texts = [say.text for say in spoken(step)]
    assert texts[0].startswith("Unfortunately, we could not confirm your identity.")
    assert all(
        say.language == "en-US" and say.voice == "Polly.Joanna-Neural" for say in spoken(step)
    )


@pytest.mark.parametrize(
    ("presses", "language", "first"),
    [
        (["9"], "en-US", "For payments, invoices or account data, press 1."),
        (["9", "9"], "de-DE", "Für Zahlungen, Rechnungen oder Kontodaten drücken Sie die 1."),
        (["9", "9", "9"], "en-US", "For payments, invoices or account data, press 1."),
        (["9", "*"], "en-US", "For payments, invoices or account data, press 1."),
    ],
    ids=["to english", "back to german", "english again", "english repeated"],
)
def test_key_9_switches_between_german_and_english(
    flow: Flow, presses: list[str], language: str, first: str
) -> None:
    """Key 9 switches German to English and back, replaying the menu without the welcome."""
    step = engine.advance(flow, None, CallStarted(CALL_SID, "+4930123456", T0))
    for key in presses:
        step = press(flow, step, key)
    assert step.state.language == language and step.state.node == flow.start
    assert spoken(step)[0].text.startswith(first)
    step = press(flow, step, "1")
    step = engine.advance(flow, step.state, CallerLookedUp("100042"))
    assert {say.language for say in spoken(step)} == {language}  # the PIN prompt too
