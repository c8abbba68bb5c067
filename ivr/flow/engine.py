"""The pure call-flow engine: ``advance(flow, state, event) -> Step``.

No I/O and no globals: the caller stores the returned :class:`CallState`, renders the
actions and performs the :data:`Need`, answering with the matching event. Anything
out of place (a replayed or out-of-order step, an answer nobody asked for, a dependency
failure) routes the caller to an agent as not identified via :func:`unavailable`.

The PIN only ever travels in the transient :class:`VerifyPin` need.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.flow.actions import Action, Gather, Hangup, Reason, Route
from ivr.flow.model import Flow
from ivr.flow.nodes import (
    CallerLookupNode,
    CustomerNumberNode,
    MenuNode,
    Node,
    PinNode,
    RouteNode,
)
from ivr.flow.state import (
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

Actions = tuple[Action, ...]


def advance(flow: Flow, state: CallState | None, event: Event) -> Step:
    """Apply ``event`` to the call ``state`` (None before the call started)."""
    if isinstance(event, CallStarted):
        if state is not None:  # /voice twice for one call: a replay
            return unavailable_from(flow, state)
        fresh = CallState(
            event.call_sid, event.caller, flow.default_language, node="", started_at=event.now
        )
        return _enter(flow, fresh, flow.start)
    if state is None or state.routed:
        return unavailable_from(flow, state)
    node = flow.nodes.get(state.node)
    if isinstance(event, Digits):
        if event.node != state.node or event.seq != state.seq:
            return unavailable_from(flow, state)
        return _digits(flow, state, node, event.digits)
    if isinstance(event, CallerLookedUp):
        if not isinstance(node, CallerLookupNode):
            return unavailable_from(flow, state)
        if event.customer_number is None:
            return _enter(flow, state, node.other)
        return _enter(flow, state.evolve(customer_number=event.customer_number), node.single)
    if isinstance(event, CustomerNumberChecked):
        if not isinstance(node, CustomerNumberNode):
            return unavailable_from(flow, state)
        return _enter(flow, state.evolve(customer_number=event.reference), node.next)
    return _pin_checked(flow, state, node, event)


def unavailable(
    flow: Flow,
    state: CallState | None,
    *,
    call_sid: str,
    caller: str | None,
    language: str | None,
) -> Step:
    """Route to an agent as not identified (reason ``unavailable``), with or without state.

    Without a state, a minimal one is built from ``call_sid``, ``caller`` and ``language``
    (an undeclared or missing language falls back to the flow's default).
    """
    if state is None:
        known = language is not None and language in flow.languages
        lang = language if language is not None and known else flow.default_language
        state = CallState(call_sid, caller, lang, flow.unavailable)
    return _route(flow, state, _route_node(flow, flow.unavailable), (), Reason.UNAVAILABLE)


def unavailable_from(flow: Flow, state: CallState | None) -> Step:
    """:func:`unavailable` from where ``state`` is (its CallSid, caller and language)."""
    if state is None:
        return unavailable(flow, None, call_sid="", caller=None, language=None)
    return unavailable(
        flow, state, call_sid=state.call_sid, caller=state.caller, language=state.language
    )


# --- input -------------------------------------------------------------------------------


def _digits(flow: Flow, state: CallState, node: Node | None, digits: str | None) -> Step:
    if isinstance(node, MenuNode):
        return _menu(flow, state, node, digits)
    if isinstance(node, CustomerNumberNode):
        value = _typed(digits)
        if value and _is_digits(value) and len(value) <= node.max_digits:
            return Step(state, (), CheckCustomerNumber(value))
        return _reprompt(flow, state, node, value)
    if isinstance(node, PinNode):
        if state.customer_number is None:
            return unavailable_from(flow, state)
        pin = _typed(digits)
        if _is_pin(flow, pin):
            return Step(state, (), VerifyPin(state.customer_number, state.caller, pin))
        return _reprompt(flow, state, node, pin)
    return unavailable_from(flow, state)


def _menu(flow: Flow, state: CallState, node: MenuNode, digits: str | None) -> Step:
    key = node.keys.get(digits or "")
    if key is None:
        return _reprompt(flow, state, node, digits)
    language = key.language_after(state.language)
    return _enter(flow, state.evolve(topic=key.topic or state.topic, language=language), key.goto)


def _typed(digits: str | None) -> str:
    """What the caller typed, without the ``#`` that may end it."""
    value = digits or ""
    return value[:-1] if value.endswith("#") else value


def _is_pin(flow: Flow, value: str) -> bool:
    return bool(value) and _is_digits(value) and len(value) == flow.pin_length


def _is_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _reprompt(
    flow: Flow, state: CallState, node: MenuNode | CustomerNumberNode | PinNode, typed: str | None
) -> Step:
    """No input (``typed`` empty) or an invalid one: ask again, or give up after too many."""
    state = state.evolve(reprompts=state.reprompts + 1)
    if state.reprompts > flow.max_reprompts:
        return _enter(flow, state, flow.no_input)
    excuse = flow.invalid_prompt if typed else flow.no_input_prompt
    return _gather(flow, state, node, (excuse, node.prompt))


def _pin_checked(flow: Flow, state: CallState, node: Node | None, event: PinChecked) -> Step:
    if not isinstance(node, PinNode) or event.verdict is Verdict.UNAVAILABLE:
        return unavailable_from(flow, state)
    state = state.evolve(attempts=state.attempts + 1)
    if event.verdict is Verdict.VERIFIED:
        verified = state.evolve(identified=True, name=event.name, verified_at=event.now)
        return _enter(flow, verified, node.verified)
    if event.verdict is Verdict.LOCKED:
        return _enter(flow, state, node.locked)
    if state.attempts < flow.attempts_per_call:
        return _gather(flow, state.evolve(reprompts=0), node, (node.retry_prompt, node.prompt))
    return _enter(flow, state, node.failed)


# --- output ------------------------------------------------------------------------------


def _enter(flow: Flow, state: CallState, name: str, actions: Actions = ()) -> Step:
    """Move to node ``name``: the previous node is still ``state.node``."""
    node = flow.nodes[name]
    arriving = state.evolve(reprompts=0)
    if isinstance(node, MenuNode):
        intro = node.intro if name != state.node else None
        return _gather(flow, arriving, node, (intro, node.prompt), actions)
    if isinstance(node, CallerLookupNode):
        if state.caller is None:
            return _enter(flow, state, node.other, actions)
        return Step(arriving.evolve(node=name), actions, LookupCaller(state.caller))
    if isinstance(node, CustomerNumberNode):
        return _gather(flow, arriving, node, (node.prompt,), actions)
    if isinstance(node, PinNode):
        if state.customer_number is None:  # a flow that asks for a PIN of nobody
            return _route(
                flow, state, _route_node(flow, flow.unavailable), actions, Reason.UNAVAILABLE
            )
        return _gather(flow, arriving, node, (node.prompt,), actions)
    return _route(flow, arriving, node, actions)


def _gather(
    flow: Flow,
    state: CallState,
    node: MenuNode | CustomerNumberNode | PinNode,
    prompts: Sequence[str | None],
    actions: Actions = (),
) -> Step:
    """Ask at ``node``; every Gather moves the call to the next ``seq``."""
    state = state.evolve(node=node.name, seq=state.seq + 1, said=tuple(prompts))
    return Step(state, (*actions, _gather_action(flow, state, node)))


def _gather_action(
    flow: Flow, state: CallState, node: MenuNode | CustomerNumberNode | PinNode
) -> Gather:
    """The Gather of ``state`` (at ``node``, speaking ``state.said``)."""
    num_digits: int | None = 1
    finish: str | None = None
    if not isinstance(node, MenuNode):
        num_digits = flow.pin_length if isinstance(node, PinNode) else None
        finish = "#"
    return Gather(
        node=node.name,
        seq=state.seq,
        language=state.language,
        prompts=flow.says(state.language, state.said),
        num_digits=num_digits,
        finish_on_key=finish,
        timeout_s=flow.gather_timeout_s,
    )


def answer_again(flow: Flow, state: CallState) -> Actions:
    """The answer that left the call in ``state``, rendered again from the state alone
    (for a retried request: same TwiML, no work done twice)."""
    node = flow.nodes.get(state.node)
    if state.routed and isinstance(node, RouteNode):
        return _route_actions(flow, state, node)
    if isinstance(node, MenuNode | CustomerNumberNode | PinNode) and not state.routed:
        return (_gather_action(flow, state, node),)
    return unavailable(
        flow, None, call_sid=state.call_sid, caller=state.caller, language=state.language
    ).actions


def _route(
    flow: Flow, state: CallState, node: RouteNode, actions: Actions, reason: Reason | None = None
) -> Step:
    """Hand the call to an agent; only a verified route keeps the caller identified."""
    why = reason or node.reason
    identified = state.identified and why is Reason.VERIFIED
    state = state.evolve(
        node=node.name,
        reason=why,
        routed=True,
        identified=identified,
        name=state.name if identified else None,
        verified_at=state.verified_at if identified else None,
    )
    return Step(state, (*actions, *_route_actions(flow, state, node)))


def _route_actions(flow: Flow, state: CallState, node: RouteNode) -> Actions:
    before = flow.says(state.language, (node.prompt,))
    after = flow.says(state.language, (node.after,))
    return (*before, Route(state.screen_pop()), *after, Hangup())


def _route_node(flow: Flow, name: str) -> RouteNode:
    node = flow.nodes[name]
    if not isinstance(node, RouteNode):  # pragma: no cover - parse_flow guarantees it
        raise TypeError(f"node '{name}' is not a route node")
    return node
