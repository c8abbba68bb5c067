"""The terminal phone executes TwiML like Twilio: verbs, Gather rules, signing, cookies.

A small service written here answers with chosen TwiML and checks every request's
signature with Twilio's own validator, so what the phone sends is checked for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

from ivr.phone_sim import CallerId, Endpoint, Outcome, ScriptedKeypad, TerminalPhone, Transport
from ivr.phone_sim.keys import collect, parse_script
from ivr.phone_sim.phone import outcome_of
from ivr.phone_sim.transport import WebhookError
from ivr.phone_sim.verbs import RouteVerb, TwimlError, parse_twiml
from tests.live_server import serving

TOKEN = "twiml-test-token-0123456789"
PUBLIC = "https://public.example.org"


@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    cookies: list[str | None] = field(default_factory=list)


def twiml_service(seen: Seen) -> Flask:
    """Answers /voice with a document that exercises every verb the phone knows."""
    app = Flask(__name__)
    validator = RequestValidator(TOKEN)

    @app.before_request
    def check() -> None:
        if request.path.startswith("/api/"):
            return  # the screen-pop API takes a bearer token, not a signature
        url = PUBLIC + request.full_path.rstrip("?")
        params = request.form.to_dict() if request.method == "POST" else {}
        if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        seen.requests.append((request.method, request.path, request.values.to_dict()))
        seen.cookies.append(request.cookies.get("leg"))

    def xml(body: str) -> Response:
        return Response(f"<?xml version='1.0'?><Response>{body}</Response>", mimetype="text/xml")

    @app.post("/voice")
    def voice() -> Response:
        answer = xml(
            "<Say>Hello</Say><Pause length='2'/><Play>https://x.example/tone.mp3</Play>"
            "<Gather action='/gathered' numDigits='3' finishOnKey='*' timeout='3'>"
            "<Say language='fr-FR' voice='Polly.Lea'>Tapez</Say></Gather>"
            "<Redirect method='GET'>/after-silence?x=1</Redirect>"
        )
        answer.set_cookie("leg", "one")
        return answer

    @app.post("/gathered")
    def gathered() -> Response:
        return xml("<Redirect>route</Redirect>")

    @app.get("/after-silence")
    def after_silence() -> Response:
        return xml("<Say>Nothing typed</Say><Hangup/>")

    @app.post("/route")
    def route() -> Response:
        task = '{"identified":true,"reason":"verified"}'
        return xml(f"<Enqueue workflowSid='WW1'><Task>{task}</Task></Enqueue><Say>x</Say>")

    @app.post("/loop")
    def loop() -> Response:
        return xml("<Redirect>/loop</Redirect>")

    @app.post("/garbage")
    def garbage() -> Response:
        return Response("<html>oops</html>", mimetype="text/html")

    @app.post("/voice/status")
    def status() -> Response:
        return Response("", status=204)

    @app.get("/api/calls/<sid>")
    def api(sid: str) -> Response:
        return Response('{"error": "unknown call"}', status=404, mimetype="application/json")

    return app


@pytest.fixture
def seen() -> Seen:
    """What the service saw."""
    return Seen()


@pytest.fixture
def local(seen: Seen) -> Iterator[str]:
    """The TwiML service on a free port."""
    with serving(twiml_service(seen)) as url:
        yield url


def place(local: str, keys: str, voice_path: str = "/voice") -> tuple[Outcome, list[str]]:
    lines: list[str] = []
    phone = TerminalPhone(
        Transport(Endpoint(local, PUBLIC), TOKEN),
        ScriptedKeypad(parse_script(keys)),
        lines.append,
        CallerId("+4930111111"),
        api_token="some-api-token-123456",
        voice_path=voice_path,
    )
    return phone.call().outcome, lines


def test_keys_follow_the_gather_action_with_cookies(local: str, seen: Seen) -> None:
    """Digits end at finishOnKey (not posted), go to the action; cookies stay with the call."""
    outcome, lines = place(local, "12*")
    text = "\n".join(lines)
    assert outcome is Outcome.IDENTIFIED  # no screen-pop (404): the Task carries the flag
    assert "Say [en-US] Hello" in text and "Pause 2s" in text and "Play https://" in text
    assert "  Say [fr-FR Polly.Lea] Tapez" in text
    assert "Gather numDigits=3 finishOnKey='*' timeout=3s" in text
    gathered = [params for method, path, params in seen.requests if path == "/gathered"]
    assert gathered[0]["Digits"] == "12" and gathered[0]["FinishedOnKey"] == "*"
    assert seen.requests[0][2]["CallStatus"] == "ringing"
    assert seen.cookies[0] is None and all(c == "one" for c in seen.cookies[1:])
    assert "Enqueue workflowSid=WW1" in text and "identified flag: true" in text
    assert "Screen-pop: not available (HTTP 404" in text
    assert seen.requests[-1][1] == "/voice/status"


def test_num_digits_submits_at_once_and_shows_extra_keys(local: str, seen: Seen) -> None:
    """The Gather completes at numDigits; keys after that are reported as ignored."""
    _, lines = place(local, "12345")
    assert "  keys: 123  (ignored after the Gather completed: 45)" in lines
    assert [p["Digits"] for _, path, p in seen.requests if path == "/gathered"] == ["123"]


def test_silence_falls_through_to_the_next_verb(local: str, seen: Seen) -> None:
    """Without actionOnEmptyResult a silent Gather falls through to the signed GET Redirect."""
    outcome, lines = place(local, "")
    assert outcome is Outcome.NO_AGENT
    assert "(no input: Twilio continues with the next verb)" in lines
    assert ("GET", "/after-silence") in [(m, p) for m, p, _ in seen.requests]
    assert "Hangup" in lines


def test_redirect_loop_and_garbage_are_errors(local: str) -> None:
    """A document that redirects forever, or an answer that is not TwiML, fails the call."""
    with pytest.raises(WebhookError, match="loop"):
        place(local, "", voice_path="/loop")
    with pytest.raises(WebhookError, match="did not answer TwiML"):
        place(local, "", voice_path="/garbage")


def test_gather_rule() -> None:
    """numDigits and finishOnKey end a Gather; the finish key is never part of the digits."""
    assert collect("1", 1, "").complete
    assert collect("123#", None, "#").digits == "123"
    assert collect("123#", None, "#").finished_on_key == "#"
    assert not collect("12", 6, "#").complete  # timeout with partial input
    assert collect("#", 6, "#").digits == ""
    assert collect("1234567", 6, "#").ignored == "7"


def test_script_and_twiml_parsing() -> None:
    """Scripts split per Gather; TwiML must be a Response; SIP headers carry the flag."""
    assert parse_script("1,,123456#") == ["1", "", "123456#"]
    with pytest.raises(ValueError, match="--keys"):
        parse_script("1,x")
    with pytest.raises(TwimlError):
        parse_twiml("<Other/>")
    with pytest.raises(TwimlError):
        parse_twiml("not xml")
    (dial,) = parse_twiml(
        "<Response><Dial><Sip>sip:a@pbx?X-IVR-Identified=false&amp;X-IVR-Reason=locked</Sip>"
        "</Dial></Response>"
    )
    assert isinstance(dial, RouteVerb) and dial.identified is False
    assert outcome_of(dial, None) is Outcome.NOT_IDENTIFIED
    assert outcome_of(dial, {"identified": True}) is Outcome.IDENTIFIED  # screen-pop decides


def test_public_and_local_urls() -> None:
    """Relative URLs resolve against the current document and are sent to the local base."""
    endpoint = Endpoint("http://127.0.0.1:5000", "https://abc.ngrok.app")
    url = endpoint.public("step?n=1", "https://abc.ngrok.app/voice/x")
    assert url == "https://abc.ngrok.app/voice/step?n=1"
    assert endpoint.local(url) == "http://127.0.0.1:5000/voice/step?n=1"
    assert endpoint.local("https://other.example/x") == "https://other.example/x"
