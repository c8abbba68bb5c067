"""TwiML as a phone sees it: each verb parsed into a frozen value (pure, no I/O).

Only what a voice call does with a document matters here: what is spoken, how keys are
collected, where the call goes next, and how it reaches an agent. The defaults are
Twilio's (Gather: POST to the current document, ``finishOnKey="#"``, 5 s timeout).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

from ivr.exceptions import IVRError

TWILIO_GATHER_TIMEOUT_S = 5


class TwimlError(IVRError):
    """The answer was not a TwiML document Twilio could execute."""


@dataclass(frozen=True)
class SayVerb:
    text: str
    language: str
    voice: str | None = None


@dataclass(frozen=True)
class PlayVerb:
    url: str


@dataclass(frozen=True)
class PauseVerb:
    seconds: int


Prompt = SayVerb | PlayVerb | PauseVerb


@dataclass(frozen=True)
class GatherVerb:
    """Collect keys while playing ``prompts``; ``action`` None means the current URL."""

    action: str | None
    method: str = "POST"
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout_s: int = TWILIO_GATHER_TIMEOUT_S
    action_on_empty_result: bool = False
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True)
class RedirectVerb:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class HangupVerb:
    rejected: bool = False


@dataclass(frozen=True)
class Target:
    """Who a Dial or Enqueue reaches: Number, Client, Sip, Queue or Task, with parameters."""

    kind: str
    value: str
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RouteVerb:
    """``<Dial>`` or ``<Enqueue>``: the call goes to an agent here."""

    verb: str
    attributes: Mapping[str, str]
    targets: tuple[Target, ...]

    @property
    def identified(self) -> bool | None:
        """The identified flag as the routing carries it; None when it does not carry one."""
        for target in self.targets:
            flag = target.parameters.get("identified")
            if flag is not None:
                return flag == "true"
        return None


@dataclass(frozen=True)
class UnknownVerb:
    tag: str


Verb = Prompt | GatherVerb | RedirectVerb | HangupVerb | RouteVerb | UnknownVerb


def parse_twiml(text: str) -> tuple[Verb, ...]:
    """The verbs of a ``<Response>`` document, in order; TwimlError if it is not one."""
    try:
        # The document comes from the service under test; expat resolves no external entities.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise TwimlError(f"not valid XML ({exc})") from None
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, not <Response>")
    return tuple(_verb(element) for element in root)


def _verb(el: ET.Element) -> Verb:
    if el.tag in ("Say", "Play", "Pause"):
        return _prompt(el)
    if el.tag == "Gather":
        return GatherVerb(
            action=el.get("action") or None,
            method=(el.get("method") or "POST").upper(),
            num_digits=_int(el.get("numDigits")),
            finish_on_key=el.get("finishOnKey", "#"),
            timeout_s=_int(el.get("timeout")) or TWILIO_GATHER_TIMEOUT_S,
            action_on_empty_result=el.get("actionOnEmptyResult", "").lower() == "true",
            prompts=tuple(_prompt(child) for child in el if child.tag in ("Say", "Play", "Pause")),
        )
    if el.tag == "Redirect":
        url = (el.text or "").strip()
        if not url:
            raise TwimlError("<Redirect> without a URL")
        return RedirectVerb(url, (el.get("method") or "POST").upper())
    if el.tag in ("Hangup", "Reject"):
        return HangupVerb(rejected=el.tag == "Reject")
    if el.tag in ("Dial", "Enqueue"):
        return RouteVerb(el.tag, MappingProxyType(dict(el.attrib)), _targets(el))
    return UnknownVerb(el.tag)


def _prompt(el: ET.Element) -> Prompt:
    if el.tag == "Say":
        # Twilio speaks en-US unless told otherwise.
        return SayVerb((el.text or "").strip(), el.get("language", "en-US"), el.get("voice"))
    if el.tag == "Play":
        return PlayVerb((el.text or "").strip())
    return PauseVerb(_int(el.get("length")) or 1)


def _targets(el: ET.Element) -> tuple[Target, ...]:
    """The nouns of a Dial/Enqueue, each with the flag parameters it carries."""
    if el.tag == "Enqueue":
        task = el.find("Task")
        if task is not None:
            return (Target("Task", (task.text or "").strip(), _task_fields(task.text or "")),)
        return (Target("Queue", (el.text or "").strip()),)
    out: list[Target] = []
    for noun in el:
        if noun.tag == "Client":
            identity = noun.findtext("Identity") or (noun.text or "").strip()
            params = {p.get("name", ""): p.get("value", "") for p in noun.iter("Parameter")}
            out.append(Target("Client", identity.strip(), MappingProxyType(params)))
        elif noun.tag == "Sip":
            uri = (noun.text or "").strip()
            out.append(Target("Sip", uri, _sip_headers(uri)))
        else:
            out.append(Target(noun.tag, (noun.text or "").strip()))
    if not out and (el.text or "").strip():
        out.append(Target("Number", (el.text or "").strip()))
    return tuple(out)


def _task_fields(text: str) -> Mapping[str, str]:
    """Task attributes as strings; ``identified`` as ``true``/``false`` like the others."""
    try:
        data = json.loads(text)
    except ValueError:
        return MappingProxyType({})
    if not isinstance(data, dict):
        return MappingProxyType({})
    flat = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in data.items()}
    return MappingProxyType(flat)


def _sip_headers(uri: str) -> Mapping[str, str]:
    """``X-IVR-Identified=true&…`` of a SIP URI as ``{"identified": "true", …}``."""
    headers: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(uri).query):
        if name.lower().startswith("x-ivr-"):
            headers[name[6:].lower().replace("-", "_")] = value
    return MappingProxyType(headers)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
