"""Place calls against the app the way Twilio does: signed form posts, TwiML walked.

Requests are signed with Twilio's own ``RequestValidator.compute_signature`` over the
public URL Twilio would call, so the app's real signature check runs in every test.
"""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from werkzeug.wrappers import Response

from ivr.phone_sim import sign

__all__ = ["PUBLIC_BASE", "Call", "Poster", "Twiml", "parse_task", "sign"]

PUBLIC_BASE = "https://ivr.example.com"


class Poster(Protocol):
    """Where a call's requests go: Flask's test client, or real HTTP (tests/fleet)."""

    def post(self, path: str, *, data: dict[str, str], headers: dict[str, str]) -> Response:
        """POST the form ``data`` to ``path`` (with its query string)."""
        ...


@dataclass
class Twiml:
    """A parsed TwiML answer with the questions tests ask of it."""

    status: int
    root: ET.Element

    @classmethod
    def parse(cls, response: Response) -> Twiml:
        assert response.mimetype == "text/xml", response.get_data(as_text=True)
        return cls(response.status_code, ET.fromstring(response.get_data(as_text=True)))

    @property
    def verbs(self) -> list[str]:
        return [child.tag for child in self.root]

    @property
    def gather(self) -> ET.Element | None:
        return self.root.find("Gather")

    def says(self) -> list[str]:
        """Every text spoken, in order, including inside Gather."""
        return [el.text or "" for el in self.root.iter("Say")]

    def languages(self) -> set[str]:
        return {el.get("language", "") for el in self.root.iter("Say")}

    @property
    def routed(self) -> bool:
        return self.root.find("Enqueue") is not None or self.root.find("Dial") is not None

    def text(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


@dataclass
class Call:
    """One call in progress: remembers where the last Gather posts to."""

    client: Poster
    auth_token: str
    caller: str
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    last: Twiml | None = None
    base: str = PUBLIC_BASE
    history: list[Twiml] = field(default_factory=list)

    def params(self, **extra: str) -> dict[str, str]:
        base = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": "+4930555000",
            "Direction": "inbound",
            "CallStatus": "in-progress",
            "ApiVersion": "2010-04-01",
        }
        base.update(extra)
        return base

    def post(self, path: str, params: dict[str, str], **headers: str) -> Response:
        """POST ``params`` to ``path`` signed for the public URL, like Twilio."""
        url = urljoin(self.base + "/", path.lstrip("/"))
        split = urlsplit(url)
        local = split.path + (f"?{split.query}" if split.query else "")
        signature = sign(self.auth_token, url, params)
        all_headers = {"X-Twilio-Signature": signature, **headers}
        return self.client.post(local, data=params, headers=all_headers)

    def _record(self, response: Response) -> Twiml:
        self.last = Twiml.parse(response)
        self.history.append(self.last)
        return self.last

    def start(self) -> Twiml:
        return self._record(self.post("/voice", self.params()))

    def action_url(self) -> str:
        assert self.last is not None and self.last.gather is not None, "no Gather to answer"
        return self.last.gather.get("action", "")

    def press(self, digits: str) -> Twiml:
        """Answer the pending Gather with ``digits`` (as Twilio posts them)."""
        return self._record(self.post(self.action_url(), self.params(Digits=digits)))

    def silence(self) -> Twiml:
        """Let the pending Gather time out (actionOnEmptyResult: no Digits at all)."""
        return self._record(self.post(self.action_url(), self.params()))

    def hang_up(self) -> Response:
        return self.post("/voice/status", self.params(CallStatus="completed"))

    def walk(self, *keys: str) -> Twiml:
        """Start the call and press each entry of ``keys`` in turn ("" = silence)."""
        twiml = self.start()
        for key in keys:
            twiml = self.press(key) if key else self.silence()
        return twiml


def parse_task(twiml: Twiml) -> dict[str, Any]:
    """The JSON of an ``<Enqueue><Task>`` answer."""
    task = twiml.root.find("Enqueue/Task")
    assert task is not None and task.text
    parsed: dict[str, Any] = json.loads(task.text)
    return parsed
