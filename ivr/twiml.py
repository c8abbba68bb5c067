"""The one place that turns flow actions into TwiML (with Twilio's helper library).

Routing (SPEC §4) is rendered here too, because each mode is just a different TwiML
shape carrying the same screen-pop: Enqueue with a Task, Dial to a Voice SDK client
with parameters, Dial to a SIP URI with X- headers, or Dial to a number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from urllib.parse import quote
from xml.sax.saxutils import escape

from twilio.twiml.voice_response import VoiceResponse

from ivr.config import RoutingSettings
from ivr.flow.actions import Action, Gather, Hangup, Pause, Route, Say, ScreenPop

# Builds the URL (relative to the webhook base) a Gather posts its digits to.
StepUrl = Callable[[Gather], str]

DIAL_TIMEOUT_S = 30


def step_url(gather: Gather) -> str:
    """Default step URL: node, step counter and language travel in the query string."""
    return f"/voice/step?node={quote(gather.node)}&n={gather.seq}&lang={quote(gather.language)}"


def render(
    actions: Iterable[Action], routing: RoutingSettings, url_for_step: StepUrl = step_url
) -> str:
    """Render ``actions`` as a TwiML document."""
    return Renderer(routing, url_for_step).render(actions)


_HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
_TAIL = "</Response>"
# Stands in for the step counter in cached Gather fragments; replaced per request.
_SEQ_MARK = 987654321
# Stands in for the task JSON in the cached <Enqueue>; no JSON text can contain it raw.
_TASK_MARK = "\x00TASK\x00"
MAX_CACHED_FRAGMENTS = 4096


class Renderer:
    """Renders actions, rendering each fragment that is the same for every call once.

    Prompts and Gathers differ between callers only in the step counter, so the helper
    library renders each once and later requests reuse the text. Routes carry the
    caller's screen-pop: in ``enqueue`` mode only as the ``<Task>`` text, so the helper
    renders the element once around a marker and each call's JSON is escaped into it the
    way ElementTree escapes text; other modes put it in attributes and are rendered every
    time. One instance per app.
    """

    def __init__(self, routing: RoutingSettings, url_for_step: StepUrl = step_url) -> None:
        self._routing = routing
        self._url_for_step = url_for_step
        self._fragments: dict[object, str] = {}
        self._task_template = self._enqueue_template() if routing.mode == "enqueue" else None

    def render(self, actions: Iterable[Action]) -> str:
        """Render ``actions`` as a TwiML document."""
        parts = [self._fragment(action) for action in actions]
        return _HEAD + "".join(parts) + _TAIL if parts else str(VoiceResponse())

    def _fragment(self, action: Action) -> str:
        if isinstance(action, Route):
            if self._task_template is not None:
                return self._task_template.replace(_TASK_MARK, escape(task_json(action.pop)), 1)
            return self._render_fragment(action)
        # A Gather is cached without its step counter (its fields but seq, no copy made).
        key = _gather_key(action) if isinstance(action, Gather) else action
        text = self._fragments.get(key)
        if text is None:
            text = self._render_fragment(
                replace(action, seq=_SEQ_MARK) if isinstance(action, Gather) else action
            )
            if len(self._fragments) < MAX_CACHED_FRAGMENTS:  # flows are finite; stay bounded
                self._fragments[key] = text
        if isinstance(action, Gather):
            text = text.replace(f"n={_SEQ_MARK}", f"n={action.seq}")
        return text

    def _enqueue_template(self) -> str:
        response = VoiceResponse()
        _enqueue(response, self._routing, _TASK_MARK)
        return self._unframe(str(response))

    def _render_fragment(self, action: Action) -> str:
        response = VoiceResponse()
        _render_one(response, action, self._routing, self._url_for_step)
        return self._unframe(str(response))

    @staticmethod
    def _unframe(document: str) -> str:
        if not (document.startswith(_HEAD) and document.endswith(_TAIL)):  # pragma: no cover
            raise RuntimeError("unexpected TwiML framing from the helper library")
        return document[len(_HEAD) : -len(_TAIL)]


def _render_one(
    response: VoiceResponse, action: Action, routing: RoutingSettings, url_for_step: StepUrl
) -> None:
    if isinstance(action, Say):
        _say(response, action)
    elif isinstance(action, Gather):
        _gather(response, action, url_for_step(action))
    elif isinstance(action, Pause):
        response.pause(length=action.seconds)
    elif isinstance(action, Route):
        _route(response, action.pop, routing)
    elif isinstance(action, Hangup):
        response.hangup()
    else:  # pragma: no cover - exhaustive over Action
        raise TypeError(f"unknown action {action!r}")


def _say(parent: object, say: Say) -> None:
    kwargs = {"language": say.language}
    if say.voice:
        kwargs["voice"] = say.voice
    parent.say(say.text, **kwargs)  # type: ignore[attr-defined]


def _gather(response: VoiceResponse, gather: Gather, url: str) -> None:
    kwargs: dict[str, object] = {
        "input": "dtmf",
        "action": url,
        "method": "POST",
        "timeout": gather.timeout_s,
        "action_on_empty_result": True,
    }
    if gather.num_digits is not None:
        kwargs["num_digits"] = gather.num_digits
    # Twilio's default finishOnKey is '#'; an empty string disables it for the menu.
    kwargs["finish_on_key"] = gather.finish_on_key or ""
    element = response.gather(**kwargs)
    for say in gather.prompts:
        _say(element, say)
    # Reached only if Twilio skipped the action on silence: post "no input" ourselves.
    response.redirect(url, method="POST")


def _enqueue(response: VoiceResponse, routing: RoutingSettings, task: str) -> None:
    response.enqueue(None, workflow_sid=routing.workflow_sid).task(task)


def _route(response: VoiceResponse, pop: ScreenPop, routing: RoutingSettings) -> None:
    if routing.mode == "enqueue":
        _enqueue(response, routing, task_json(pop))
        return
    dial = response.dial(answer_on_bridge=True, timeout=DIAL_TIMEOUT_S)
    if routing.mode == "client":
        client = dial.client()
        client.identity(routing.client_identity)
        for name, value in flag_parameters(pop).items():
            client.parameter(name=name, value=value)
    elif routing.mode == "sip":
        dial.sip(sip_uri(routing.sip_uri, pop))
    else:
        dial.number(routing.number)


def task_json(pop: ScreenPop) -> str:
    """The ``<Task>`` text: :func:`task_attributes` as compact JSON."""
    return json.dumps(task_attributes(pop), separators=(",", ":"))


# Every field of a Gather but its step counter: new fields join the cache key by themselves.
_GATHER_FIELDS = tuple(f.name for f in fields(Gather) if f.name != "seq")


def _gather_key(gather: Gather) -> tuple[object, ...]:
    return (Gather, *(getattr(gather, name) for name in _GATHER_FIELDS))


def task_attributes(pop: ScreenPop) -> dict[str, object]:
    """TaskRouter task attributes: the whole screen-pop plus a task type."""
    return {"type": "inbound_call", **pop.to_json()}


def flag_parameters(pop: ScreenPop) -> dict[str, str]:
    """The identified flag and its context as flat string parameters (Client, SIP)."""
    params = {
        "call_sid": pop.call_sid,
        "identified": "true" if pop.identified else "false",
        "reason": pop.reason.value if pop.reason else "",
        "topic": pop.topic or "",
        "language": pop.language,
    }
    if pop.identified and pop.customer_number:
        params["customer_number"] = pop.customer_number
    return params


def sip_uri(base: str, pop: ScreenPop) -> str:
    """``base`` with the flag parameters appended as ``X-IVR-…`` SIP headers."""
    headers = "&".join(
        f"X-IVR-{_header_name(name)}={quote(value, safe='')}"
        for name, value in flag_parameters(pop).items()
    )
    return f"{base}{'&' if '?' in base else '?'}{headers}"


def _header_name(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("_"))
