"""The pure flow engine: each event moves the call state and yields exactly these actions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest

from ivr.flow import engine
from ivr.flow.actions import Action, Gather, Reason, Route, Say
from ivr.flow.model import Flow
from ivr.flow.state import (
    UNKNOWN_CUSTOMER,
    CallerLookedUp,
    CallStarted,
    CallState,
    CheckCustomerNumber,
    CustomerNumberChecked,
    Digits,
    Event,
    LookupCaller,
    PinChecked,
    Step,
    Verdict,
    VerifyPin,
)
from tests.flow.test_model import flow_data, parse

FLOW = parse(flow_data())  # pin_length 4, attempts_per_call 3, max_reprompts 2
CALL_SID = "CA" + "ab" * 16
CALLER = "+4915112345678"
T0, T1 = "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"
PIN = "7391"
CUSTOMER = "100042"


def start(caller: str | None = CALLER, flow: Flow = FLOW) -> Step:
    """A new call's first step."""
    return engine.advance(flow, None, CallStarted(CALL_SID, caller, T0))


def gather_of(step: Step) -> Gather:
    """The Gather that ends ``step``'s actions."""
    last = step.actions[-1]
    assert isinstance(last, Gather), step.actions
    return last


def press(step: Step, digits: str | None, flow: Flow = FLOW) -> Step:
    """Answer the Gather of ``step`` with ``digits`` (None: silence)."""
    gather = gather_of(step)
    return engine.advance(flow, step.state, Digits(gather.node, gather.seq, digits))


def typed(step: Step, digits: str, reference: str | None = None) -> Step:
    """Type a customer number at ``step`` and answer the engine's check of it (known,
    unless ``reference`` gives what the call service keeps instead)."""
    asked = press(step, digits)
    assert isinstance(asked.need, CheckCustomerNumber) and asked.actions == ()
    answer = CustomerNumberChecked(reference or asked.need.typed)
    return engine.advance(FLOW, asked.state, answer)


def texts(actions: Sequence[Action]) -> list[str]:
    """Every text spoken by ``actions``, Gather prompts included, in order."""
    spoken: list[str] = []
    for action in actions:
        if isinstance(action, Say):
            spoken.append(action.text)
        elif isinstance(action, Gather):
            spoken += [say.text for say in action.prompts]
    return spoken


def kinds(actions: Sequence[Action]) -> list[str]:
    """The action class names, for comparing shapes."""
    return [type(action).__name__ for action in actions]


def at_pin(caller: str | None = CALLER) -> Step:
    """A call that chose topic 1 and whose number belongs to exactly one account."""
    step = press(start(caller), "1")
    return engine.advance(FLOW, step.state, CallerLookedUp(CUSTOMER))


def checked(step: Step, verdict: Verdict, name: str | None = None) -> Step:
    """Submit the PIN at ``step`` and answer the VerifyPin need with ``verdict``."""
    asked = press(step, PIN)
    assert isinstance(asked.need, VerifyPin)
    return engine.advance(FLOW, asked.state, PinChecked(verdict, T1, name))


def test_call_start_opens_the_menu() -> None:
    """CallStarted creates the state at the start node and gathers one digit with the intro."""
    step = start()
    assert step.state == CallState(
        CALL_SID, CALLER, "de-DE", node="menu", seq=1, started_at=T0, said=("hello", "menu")
    )
    assert step.need is None
    assert step.actions == (
        Gather(
            node="menu",
            seq=1,
            language="de-DE",
            prompts=(
                Say("[de-DE] hello", "de-DE", "Polly.Vicki-Neural"),
                Say("[de-DE] menu", "de-DE", "Polly.Vicki-Neural"),
            ),
            num_digits=1,
            finish_on_key=None,
            timeout_s=6,
        ),
    )


@pytest.mark.parametrize(
    ("digits", "node", "topic", "spoken"),
    [
        ("1", "account", "payments", []),
        ("0", "other", "other", []),
        ("*", "menu", None, ["[de-DE] menu"]),
        ("9", "menu", None, ["[en-US] menu"]),
    ],
    ids=["topic", "no identification", "repeat", "english"],
)
def test_menu_keys(digits: str, node: str, topic: str | None, spoken: list[str]) -> None:
    """Each menu key sets its topic and goes to its node; repeat and language skip the intro."""
    step = press(start(), digits)
    assert step.state.node == node
    assert step.state.topic == topic
    assert texts(step.actions) == spoken


def test_repeat_and_language_switch_bump_seq() -> None:
    """Re-gathering the menu moves seq on, and a switch speaks the new language's voice."""
    step = press(start(), "9")
    gather = gather_of(step)
    assert (gather.seq, step.state.seq, step.state.language) == (2, 2, "en-US")
    assert gather.language == "en-US"
    assert gather.prompts == (Say("[en-US] menu", "en-US", "Polly.Joanna-Neural"),)
    again = press(step, "*")
    assert (gather_of(again).seq, again.state.language) == (3, "en-US")


def test_topic_is_kept_by_keys_without_topic() -> None:
    """A key without a topic keeps the topic chosen before."""
    step = press(start(), "0")
    assert step.state.topic == "other"
    state = dataclasses.replace(start().state, topic="payments")
    repeated = engine.advance(FLOW, state, Digits("menu", 1, "*"))
    assert repeated.state.topic == "payments"


@pytest.mark.parametrize(
    ("inputs", "first_prompt"),
    [
        ([None], "[de-DE] silence"),
        ([""], "[de-DE] silence"),
        (["5"], "[de-DE] invalid"),
        (["12"], "[de-DE] invalid"),
        (["#"], "[de-DE] invalid"),
        (["x"], "[de-DE] invalid"),
        ([None, "5"], "[de-DE] invalid"),
    ],
)
def test_menu_reprompts(inputs: list[str | None], first_prompt: str) -> None:
    """No input or an invalid key re-gathers the menu without intro, counting reprompts."""
    step = start()
    for digits in inputs:
        step = press(step, digits)
    assert step.state.reprompts == len(inputs)
    assert step.state.node == "menu" and not step.state.routed
    assert texts(step.actions) == [first_prompt, "[de-DE] menu"]
    assert gather_of(step).seq == len(inputs) + 1


@pytest.mark.parametrize("last", [None, "7"], ids=["silent", "invalid"])
def test_third_failure_routes_as_no_input(last: str | None) -> None:
    """After max_reprompts re-prompts the next failure routes as not identified (no_input)."""
    step = press(press(press(start(), None), "8"), last)
    assert step.state.routed and step.state.reason is Reason.NO_INPUT
    assert not step.state.identified
    assert kinds(step.actions) == ["Say", "Route", "Say", "Hangup"]
    assert texts(step.actions) == ["[de-DE] gave_up", "[de-DE] bye"]


def test_valid_input_resets_reprompts() -> None:
    """Moving on after a re-prompt starts the next node with a fresh reprompt count."""
    step = press(press(start(caller=None), None), "1")
    assert step.state.node == "number" and step.state.reprompts == 0


def test_withheld_caller_skips_the_lookup() -> None:
    """Without a caller number there is no LookupCaller: the customer number is asked."""
    step = press(start(caller=None), "1")
    assert step.need is None
    gather = gather_of(step)
    assert (gather.node, gather.num_digits, gather.finish_on_key) == ("number", None, "#")
    assert texts(step.actions) == ["[de-DE] number"]


def test_known_caller_needs_a_lookup() -> None:
    """With a caller number the engine stops at the lookup node and asks for LookupCaller."""
    step = press(start(), "1")
    assert step.need == LookupCaller(CALLER)
    assert step.actions == ()
    assert (step.state.node, step.state.seq) == ("account", 1)


@pytest.mark.parametrize(
    ("found", "node", "customer_number"),
    [(CUSTOMER, "pin", CUSTOMER), (None, "number", None)],
    ids=["single account", "none or several"],
)
def test_lookup_result(found: str | None, node: str, customer_number: str | None) -> None:
    """One owning account skips to the PIN; otherwise the customer number is asked."""
    asked = press(start(), "1")
    step = engine.advance(FLOW, asked.state, CallerLookedUp(found))
    assert gather_of(step).node == node
    assert step.state.customer_number == customer_number
    assert step.state.seq == 2


@pytest.mark.parametrize(
    ("digits", "customer_number", "spoken"),
    [
        ("100042#", "100042", ["[de-DE] pin of 4 digits"]),
        ("100042", "100042", ["[de-DE] pin of 4 digits"]),
        ("123456789012", "123456789012", ["[de-DE] pin of 4 digits"]),
        ("1234567890123", None, ["[de-DE] invalid", "[de-DE] number"]),
        ("12a4", None, ["[de-DE] invalid", "[de-DE] number"]),
        ("12*4#", None, ["[de-DE] invalid", "[de-DE] number"]),
        ("#", None, ["[de-DE] silence", "[de-DE] number"]),
        (None, None, ["[de-DE] silence", "[de-DE] number"]),
    ],
)
def test_customer_number(
    digits: str | None, customer_number: str | None, spoken: list[str]
) -> None:
    """A customer number is 1 to max_digits ASCII digits, '#' optional, and is checked
    before it is kept; anything else is re-prompted."""
    step = press(press(start(caller=None), "1"), digits)
    if customer_number is not None:
        assert step.need == CheckCustomerNumber(customer_number) and step.actions == ()
        step = engine.advance(FLOW, step.state, CustomerNumberChecked(customer_number))
    assert step.state.customer_number == customer_number
    assert texts(step.actions) == spoken


def test_pin_gather() -> None:
    """The PIN is gathered with num_digits = pin_length and '#' as finish key."""
    gather = gather_of(at_pin())
    assert (gather.node, gather.num_digits, gather.finish_on_key) == ("pin", 4, "#")
    assert gather.timeout_s == FLOW.gather_timeout_s


@pytest.mark.parametrize("digits", [PIN, PIN + "#"])
def test_valid_pin_needs_verification(digits: str) -> None:
    """A well-formed PIN asks for VerifyPin and changes nothing in the state."""
    before = at_pin()
    step = press(before, digits)
    assert step.need == VerifyPin(CUSTOMER, CALLER, PIN)
    assert step.need.pin == PIN
    assert step.state == before.state and step.actions == ()


@pytest.mark.parametrize(
    ("digits", "excuse"),
    [
        ("739", "invalid"),
        ("73912", "invalid"),
        ("73a1", "invalid"),
        ("", "silence"),
        (None, "silence"),
    ],
)
def test_malformed_pin_reprompts(digits: str | None, excuse: str) -> None:
    """A PIN of the wrong shape is re-prompted and does not count as an attempt."""
    step = press(at_pin(), digits)
    assert step.need is None
    assert step.state.attempts == 0 and step.state.reprompts == 1
    assert texts(step.actions) == [f"[de-DE] {excuse}", "[de-DE] pin of 4 digits"]


def test_wrong_pin_retries_then_routes_as_wrong_pin() -> None:
    """Wrong PINs are retried until attempts_per_call, then routed as not identified."""
    step = at_pin()
    for attempt in (1, 2):
        step = checked(step, Verdict.WRONG)
        assert step.state.attempts == attempt and not step.state.routed
        assert texts(step.actions) == ["[de-DE] retry", "[de-DE] pin of 4 digits"]
    step = checked(step, Verdict.WRONG)
    assert step.state.routed and step.state.reason is Reason.WRONG_PIN
    assert texts(step.actions) == ["[de-DE] wrong", "[de-DE] bye"]
    route = step.actions[1]
    assert isinstance(route, Route)
    assert route.pop.identified is False and route.pop.attempts == 3
    assert route.pop.customer_number is None
    assert route.pop.claimed_customer_number == CUSTOMER


def test_locked_routes_as_locked() -> None:
    """A locked verdict counts the attempt and routes as not identified (locked)."""
    step = checked(at_pin(), Verdict.LOCKED)
    assert step.state.reason is Reason.LOCKED and step.state.attempts == 1
    assert not step.state.identified
    assert texts(step.actions) == ["[de-DE] locked", "[de-DE] bye"]


def test_verified_routes_as_identified() -> None:
    """A verified PIN routes as identified with name, time and account on the screen-pop."""
    step = checked(checked(at_pin(), Verdict.WRONG), Verdict.VERIFIED, name="Erika Muster")
    state = step.state
    assert (state.identified, state.reason, state.routed) == (True, Reason.VERIFIED, True)
    assert (state.name, state.verified_at, state.attempts) == ("Erika Muster", T1, 2)
    assert kinds(step.actions) == ["Say", "Route", "Say", "Hangup"]
    route = step.actions[1]
    assert isinstance(route, Route)
    assert route.pop.to_json() == {
        "call_sid": CALL_SID,
        "caller": CALLER,
        "identified": True,
        "reason": "verified",
        "topic": "payments",
        "language": "de-DE",
        "customer_number": CUSTOMER,
        "name": "Erika Muster",
        "claimed_customer_number": None,
        "claimed_unknown": False,
        "attempts": 2,
        "verified_at": T1,
    }


def test_not_required_route_has_no_prompts() -> None:
    """A route node without prompt or after yields just Route and Hangup."""
    step = press(start(), "0")
    assert kinds(step.actions) == ["Route", "Hangup"]
    assert step.state.reason is Reason.NOT_REQUIRED and not step.state.identified


def test_unavailable_verdict_routes_as_unavailable() -> None:
    """When the PIN cannot be checked the caller is routed as unavailable, not identified."""
    step = checked(at_pin(), Verdict.UNAVAILABLE)
    assert step.state.reason is Reason.UNAVAILABLE and step.state.routed
    assert texts(step.actions) == ["[de-DE] sorry", "[de-DE] bye"]


def _unavailable(step: Step) -> None:
    """Assert ``step`` routes as unavailable and not identified."""
    assert step.state.routed and step.state.reason is Reason.UNAVAILABLE
    assert not step.state.identified and step.state.name is None
    assert step.state.node == "unavailable"
    assert kinds(step.actions) == ["Say", "Route", "Say", "Hangup"]


REPLAYS: list[tuple[str, Step, Event]] = [
    ("old seq", press(start(), "*"), Digits("menu", 1, "1")),
    ("future seq", start(), Digits("menu", 2, "1")),
    ("other node", start(), Digits("pin", 1, "1")),
    ("digits during lookup", press(start(), "1"), Digits("menu", 1, "1")),
    ("digits for the lookup", press(start(), "1"), Digits("account", 1, "1")),
    ("after routing", press(start(), "0"), Digits("menu", 1, "1")),
    ("lookup answer at menu", start(), CallerLookedUp(CUSTOMER)),
    ("lookup answer twice", at_pin(), CallerLookedUp(CUSTOMER)),
    ("verdict at menu", start(), PinChecked(Verdict.VERIFIED, T1, "Mallory")),
    ("verdict during lookup", press(start(), "1"), PinChecked(Verdict.VERIFIED, T1)),
    ("call started twice", start(), CallStarted(CALL_SID, CALLER, T1)),
]


@pytest.mark.parametrize(("before", "event"), [r[1:] for r in REPLAYS], ids=[r[0] for r in REPLAYS])
def test_out_of_place_events_route_as_unavailable(before: Step, event: Event) -> None:
    """A replayed, out-of-order or unasked-for event routes as unavailable, keeping the call."""
    step = engine.advance(FLOW, before.state, event)
    _unavailable(step)
    assert step.state.call_sid == CALL_SID and step.state.topic == before.state.topic
    assert step.state.started_at == T0


def test_replay_after_verification_drops_identification() -> None:
    """A step replayed after a verified route re-routes as unavailable, no longer identified."""
    done = checked(at_pin(), Verdict.VERIFIED, name="Erika Muster")
    step = engine.advance(FLOW, done.state, Digits("pin", done.state.seq, PIN))
    _unavailable(step)
    assert step.state.verified_at is None and step.state.attempts == 1


@pytest.mark.parametrize(
    "event", [Digits("menu", 1, "1"), CallerLookedUp(None), PinChecked(Verdict.WRONG, T1)]
)
def test_events_without_state_route_as_unavailable(event: Event) -> None:
    """Any event but CallStarted for an unknown call routes as unavailable."""
    _unavailable(engine.advance(FLOW, None, event))


def test_pin_without_customer_number_is_unavailable() -> None:
    """PIN digits for a call with no customer number never ask for verification."""
    state = dataclasses.replace(at_pin().state, customer_number=None)
    step = engine.advance(FLOW, state, Digits("pin", state.seq, PIN))
    assert step.need is None
    _unavailable(step)


def test_flow_reaching_pin_without_account_routes_as_unavailable() -> None:
    """A flow that goes to the PIN before knowing the account routes instead of asking."""
    data = flow_data()
    data["nodes"]["menu"]["keys"]["2"] = {"goto": "pin"}
    flow = parse(data)
    step = press(start(flow=flow), "2", flow=flow)
    _unavailable(step)


@pytest.mark.parametrize(
    ("language", "expected"), [("en-US", "en-US"), ("fr-FR", "de-DE"), (None, "de-DE")]
)
def test_unavailable_without_state(language: str | None, expected: str) -> None:
    """unavailable() without state builds a minimal routed state in a declared language."""
    step = engine.unavailable(FLOW, None, call_sid=CALL_SID, caller=None, language=language)
    _unavailable(step)
    assert (step.state.call_sid, step.state.caller, step.state.language) == (
        CALL_SID,
        None,
        expected,
    )
    assert texts(step.actions) == [f"[{expected}] sorry", f"[{expected}] bye"]
    route = step.actions[1]
    assert isinstance(route, Route) and route.pop.reason is Reason.UNAVAILABLE


def test_english_prompts_follow_the_switch() -> None:
    """After pressing 9 every prompt up to the route is English with the English voice."""
    step = press(press(start(caller=None), "9"), "1")
    step = typed(step, CUSTOMER + "#")
    step = checked(step, Verdict.LOCKED)
    says = [a for a in step.actions if isinstance(a, Say)]
    assert {(s.language, s.voice) for s in says} == {("en-US", "Polly.Joanna-Neural")}
    assert texts(step.actions) == ["[en-US] locked", "[en-US] bye"]


def _journey() -> list[Step]:
    """Every step of a call with two wrong PINs, one malformed PIN and a verified one."""
    steps = [start(caller=None)]
    steps.append(press(steps[-1], "1"))
    steps.append(typed(steps[-1], CUSTOMER + "#"))
    for pin in ("4815", "2342"):
        asked = press(steps[-1], pin)
        steps += [asked, engine.advance(FLOW, asked.state, PinChecked(Verdict.WRONG, T1))]
    steps.append(press(steps[-1], "99"))
    asked = press(steps[-1], PIN + "#")
    steps += [asked, engine.advance(FLOW, asked.state, PinChecked(Verdict.VERIFIED, T1, "Eva"))]
    replay = engine.advance(FLOW, steps[-1].state, Digits("pin", 4, PIN))
    return [*steps, replay]


def test_pin_is_never_kept() -> None:
    """No PIN digits appear in any returned state, action or screen-pop, only in VerifyPin."""
    steps = _journey()
    assert steps[-2].state.identified
    for step in steps:
        visible = [
            repr(step),
            repr(step.state),
            json.dumps(step.state.to_dict()),
            repr(step.actions),
            *(json.dumps(a.pop.to_json()) for a in step.actions if isinstance(a, Route)),
        ]
        for pin in (PIN, "4815", "2342"):
            assert not any(pin in text for text in visible), (pin, step)
    needs = [step.need for step in steps if isinstance(step.need, VerifyPin)]
    assert [need.pin for need in needs] == ["4815", "2342", PIN]


def test_every_answer_can_be_given_again_from_its_state() -> None:
    """For each step that answered (a Gather, or the route), answer_again on the state it
    left renders the very same actions: a retried request gets the same TwiML."""
    answered = [s for s in _journey()[:-1] if s.need is None and s.actions]
    assert len(answered) >= 6
    for step in answered:
        assert engine.answer_again(FLOW, step.state) == step.actions, step.state.node


def test_said_survives_storage() -> None:
    """The prompts of the last Gather are stored with the state and read back."""
    state = start().state
    assert CallState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    with pytest.raises(ValueError):
        CallState.from_dict({**state.to_dict(), "said": "menu"})


def test_an_unknown_customer_number_is_kept_only_as_its_mark() -> None:
    """A typed number no account has is kept as the mark the call service gives (a keyed
    hash): the PIN is asked as for any number, the screen-pop says unknown, shows none."""
    mark = UNKNOWN_CUSTOMER + "0f" * 16
    step = typed(press(start(caller=None), "1"), "246810#", reference=mark)
    assert step.state.customer_number == mark and gather_of(step).node == "pin"
    asked = press(step, PIN)
    assert asked.need == VerifyPin(mark, None, PIN)
    routed = engine.advance(FLOW, asked.state, PinChecked(Verdict.LOCKED, T1))
    pop = routed.state.screen_pop()
    assert (pop.claimed_customer_number, pop.claimed_unknown) == (None, True)
    assert "246810" not in json.dumps(routed.state.to_dict())


def test_a_check_answer_out_of_place_routes_unavailable() -> None:
    """A customer-number answer when the call is not at that prompt is out of place."""
    step = engine.advance(FLOW, at_pin().state, CustomerNumberChecked(CUSTOMER))
    _unavailable(step)
