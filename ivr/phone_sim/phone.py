"""One call through the running service, executed like Twilio executes TwiML.

The loop is the only I/O here: it posts the webhook, runs the verbs in order (printing
what the caller hears), asks the :class:`~ivr.phone_sim.keys.Keypad` for keys when a
Gather listens, follows ``action`` and ``<Redirect>`` URLs, and stops at Hangup, at the
end of a document, or when ``<Dial>``/``<Enqueue>`` hands the call to an agent. Then it
posts Twilio's status callback and fetches the screen-pop the agent sees.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ivr.phone_sim import render
from ivr.phone_sim.keys import Keypad, collect
from ivr.phone_sim.transport import Transport, WebhookError
from ivr.phone_sim.verbs import (
    GatherVerb,
    HangupVerb,
    PauseVerb,
    PlayVerb,
    RedirectVerb,
    RouteVerb,
    SayVerb,
    TwimlError,
    Verb,
    parse_twiml,
)

MAX_DOCUMENTS = 50  # a call that keeps redirecting longer than this is a loop
Echo = Callable[[str], None]


class Outcome(str, Enum):
    """How the call ended, from the caller's point of view."""

    IDENTIFIED = "identified"
    NOT_IDENTIFIED = "not_identified"
    NO_AGENT = "no_agent"


@dataclass(frozen=True)
class CallResult:
    call_sid: str
    outcome: Outcome
    route: RouteVerb | None
    screen_pop: Mapping[str, Any] | None


@dataclass(frozen=True)
class CallerId:
    """What Twilio says about the call in every request."""

    caller: str
    to: str = "+4930555000"
    account_sid: str = "AC" + "0" * 32
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))

    def params(self, status: str, **extra: str) -> dict[str, str]:
        """The form Twilio posts: the call's identity plus ``extra`` (e.g. ``Digits``)."""
        return {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.caller,
            "Caller": self.caller,
            "To": self.to,
            "Called": self.to,
            "Direction": "inbound",
            "CallStatus": status,
            "ApiVersion": "2010-04-01",
            **extra,
        }


@dataclass(frozen=True)
class _Next:
    url: str
    method: str
    extra: Mapping[str, str]


@dataclass(frozen=True)
class _Ended:
    route: RouteVerb | None


def outcome_of(route: RouteVerb | None, screen_pop: Mapping[str, Any] | None) -> Outcome:
    """The screen-pop decides (it is what the agent sees); else the flag in the routing."""
    if route is None:
        return Outcome.NO_AGENT
    flag = screen_pop.get("identified") if screen_pop is not None else route.identified
    return Outcome.IDENTIFIED if flag is True else Outcome.NOT_IDENTIFIED


class TerminalPhone:
    """Places one call; ``echo`` receives every line the caller would see."""

    def __init__(
        self,
        transport: Transport,
        keypad: Keypad,
        echo: Echo,
        caller_id: CallerId,
        api_token: str = "",
        voice_path: str = "/voice",
        status_path: str = "/voice/status",
    ) -> None:
        self._http = transport
        self._keypad = keypad
        self._echo = echo
        self._id = caller_id
        self._api_token = api_token
        self._voice_path = voice_path
        self._status_path = status_path

    def call(self) -> CallResult:
        """Run the call to its end; WebhookError when the service fails the call."""
        url = self._http.endpoint.public(self._voice_path)
        self._echo(render.calling(url, self._id.caller, self._id.call_sid))
        step = _Next(url, "POST", {})
        status = "ringing"  # Twilio's first request of an inbound call
        for _ in range(MAX_DOCUMENTS):
            body = self._http.webhook(step.url, step.method, self._id.params(status, **step.extra))
            status = "in-progress"
            try:
                verbs = parse_twiml(body)
            except TwimlError as exc:
                raise WebhookError(
                    f"{step.url} did not answer TwiML: {exc}; Twilio would play "
                    "'an application error has occurred'"
                ) from None
            result = self._run(verbs, step.url)
            if isinstance(result, _Ended):
                return self._hang_up(result.route)
            step = result
        raise WebhookError(f"more than {MAX_DOCUMENTS} TwiML documents in one call: a loop")

    def _run(self, verbs: tuple[Verb, ...], doc_url: str) -> _Next | _Ended:
        for verb in verbs:
            if isinstance(verb, SayVerb | PlayVerb | PauseVerb):
                self._echo(render.prompt(verb))
            elif isinstance(verb, GatherVerb):
                step = self._gather(verb, doc_url)
                if step is not None:
                    return step
            elif isinstance(verb, RedirectVerb):
                self._echo(render.redirect(verb))
                return _Next(self._http.endpoint.public(verb.url, doc_url), verb.method, {})
            elif isinstance(verb, HangupVerb):
                self._echo("Reject" if verb.rejected else "Hangup")
                return _Ended(None)
            elif isinstance(verb, RouteVerb):
                self._echo(render.route(verb))
                return _Ended(verb)
            else:
                self._echo(f"<{verb.tag}> (not simulated; skipped)")
        self._echo("(end of the TwiML document: Twilio hangs up)")
        return _Ended(None)

    def _gather(self, gather: GatherVerb, doc_url: str) -> _Next | _Ended | None:
        """Listen for keys; the next request, a hang-up, or None to fall through."""
        self._echo(render.gather(gather))
        for prompt in gather.prompts:
            self._echo("  " + render.prompt(prompt))
        keys = self._keypad.keys_for(gather)
        if keys is None:
            self._echo("(caller hangs up)")
            return _Ended(None)
        got = collect(keys, gather.num_digits, gather.finish_on_key)
        self._echo(render.keys(got, gather.finish_on_key))
        action = self._http.endpoint.public(gather.action or doc_url, doc_url)
        if got.digits:
            finished = {"FinishedOnKey": got.finished_on_key or ""}
            return _Next(action, gather.method, {"Digits": got.digits, **finished})
        if gather.action_on_empty_result:
            return _Next(action, gather.method, {})
        self._echo("(no input: Twilio continues with the next verb)")
        return None

    def _hang_up(self, route: RouteVerb | None) -> CallResult:
        pop = self._screen_pop() if route is not None else None
        try:
            url = self._http.endpoint.public(self._status_path)
            self._http.webhook(url, "POST", self._id.params("completed", CallDuration="1"))
        except WebhookError as exc:
            self._echo(f"(status callback failed: {exc})")
        result = CallResult(self._id.call_sid, outcome_of(route, pop), route, pop)
        self._echo(render.outcome(result.outcome))
        return result

    def _screen_pop(self) -> Mapping[str, Any] | None:
        """What the agent sees, from ``GET /api/calls/<CallSid>``; None if unavailable."""
        if not self._api_token:
            self._echo("Screen-pop: not fetched (no [api] token in the config)")
            return None
        path = f"/api/calls/{self._id.call_sid}"
        try:
            status, body = self._http.get_json(path, self._api_token)
        except WebhookError as exc:
            self._echo(f"Screen-pop: not available ({exc})")
            return None
        if status != 200 or not isinstance(body, dict):
            self._echo(render.screen_pop_refused(status, body))
            return None
        self._echo(render.screen_pop(body))
        return body
