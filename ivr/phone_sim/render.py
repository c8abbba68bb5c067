"""What the terminal phone prints for each verb and outcome (pure text, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ivr.phone_sim.keys import Collected
from ivr.phone_sim.verbs import (
    GatherVerb,
    PauseVerb,
    PlayVerb,
    Prompt,
    RedirectVerb,
    RouteVerb,
    SayVerb,
)

if TYPE_CHECKING:
    from ivr.phone_sim.phone import Outcome

OUTCOME_TEXT = {
    "identified": "Reached an agent: IDENTIFIED",
    "not_identified": "Reached an agent: not identified",
    "no_agent": "The call ended without reaching an agent",
}


def calling(url: str, caller: str, call_sid: str) -> str:
    shown = caller if caller.strip() else "(empty: withheld)"
    return f"Calling {url} from {shown}  CallSid {call_sid}"


def prompt(verb: Prompt) -> str:
    if isinstance(verb, SayVerb):
        voice = f" {verb.voice}" if verb.voice else ""
        return f"Say [{verb.language}{voice}] {verb.text}"
    if isinstance(verb, PlayVerb):
        return f"Play {verb.url}"
    assert isinstance(verb, PauseVerb)
    return f"Pause {verb.seconds}s"


def gather(verb: GatherVerb) -> str:
    digits = "any" if verb.num_digits is None else str(verb.num_digits)
    finish = repr(verb.finish_on_key) if verb.finish_on_key else "none"
    return (
        f"Gather numDigits={digits} finishOnKey={finish} timeout={verb.timeout_s}s"
        f"{' actionOnEmptyResult' if verb.action_on_empty_result else ''}"
    )


def keys(got: Collected, finish_on_key: str) -> str:
    """The keys a Gather took, without echoing more of them than needed."""
    if not got.digits and got.finished_on_key is None:
        line = "  keys: (none: timeout)"
    else:
        ended = f", ended with {got.finished_on_key}" if got.finished_on_key else ""
        line = f"  keys: {got.digits or '(none)'}{ended}"
    # A finish key right after numDigits is harmless (Twilio submitted already).
    extra = got.ignored[1:] if got.ignored[:1] == finish_on_key else got.ignored
    if extra:
        line += f"  (ignored after the Gather completed: {extra})"
    return line


def redirect(verb: RedirectVerb) -> str:
    return f"Redirect {verb.method} {verb.url}"


def route(verb: RouteVerb) -> str:
    """A Dial or Enqueue with its attributes, and each target with its flag parameters."""
    attrs = " ".join(f"{k}={v}" for k, v in verb.attributes.items())
    lines = [f"{verb.verb} {attrs}".rstrip()]
    for target in verb.targets:
        if target.kind == "Task":
            params = " ".join(f"{k}={v}" for k, v in target.parameters.items())
            lines.append(f"  -> Task {params or target.value}")
            continue
        params = " ".join(f"{k}={v}" for k, v in target.parameters.items())
        lines.append(f"  -> {target.kind} {target.value}" + (f"  [{params}]" if params else ""))
    flag = verb.identified
    if flag is not None:
        lines.append(f"  identified flag: {'true' if flag else 'false'}")
    return "\n".join(lines)


def screen_pop(body: Mapping[str, Any]) -> str:
    return "Screen-pop (GET /api/calls/<CallSid>):\n" + json.dumps(body, indent=2)


def screen_pop_refused(status: int, body: Any) -> str:
    why = body.get("error") if isinstance(body, dict) else None
    hint = {
        401: "the service wants a bearer token",
        403: "the [api] token differs from the service's",
        404: "the service does not know this call",
        503: "the service cannot read call state (Redis)",
    }.get(status, "see the service's log")
    return f"Screen-pop: not available (HTTP {status}{f': {why}' if why else ''}): {hint}"


def outcome(value: Outcome) -> str:
    return OUTCOME_TEXT[value.value]
