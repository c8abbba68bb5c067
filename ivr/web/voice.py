"""Twilio voice webhooks: ``/voice``, ``/voice/step``, ``/voice/status``, ``/voice/fallback``.

Every request is signature-checked first (403, nothing changed, when it fails). After
that, every answer is valid TwiML, whatever arrives: the last-resort handler routes the
caller to an agent as not identified instead of letting Twilio play its error message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, request

from ivr import phone, twiml
from ivr.deadline import QUEUED_AT, Deadline
from ivr.flow import engine
from ivr.flow.actions import Action
from ivr.services import Services
from ivr.web import form
from ivr.web.signature import SignatureChecker

bp = Blueprint("voice", __name__, url_prefix="/voice")
log = logging.getLogger("ivr.web.voice")

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MAX_DIGITS_LEN = 32


def _services() -> Services:
    services: Services = current_app.extensions["ivr"]
    return services


@bp.before_request
def check_signature() -> None:
    """Reject anything Twilio did not sign, before it can touch state."""
    checker: SignatureChecker = current_app.extensions["ivr.signature"]
    if not checker.is_valid(request):
        log.warning("rejected %s: invalid X-Twilio-Signature", request.path)
        abort(403)


@bp.post("")
def incoming() -> Response:
    """A new call: greet the caller and open the topic menu."""
    services = _services()
    call_sid, caller = _call_sid(), _caller(services)
    return _answer(lambda deadline: services.calls.start(call_sid, caller, deadline))


@bp.post("/step")
def step() -> Response:
    """The caller's keys (or silence) for the Gather named in the query string."""
    services = _services()
    call_sid, language = _call_sid(), _language(services)
    node, seq = _args().get("node", ""), _int(_args().get("n"))
    digits = _form().get("Digits")
    if digits is not None and len(digits) > MAX_DIGITS_LEN:
        digits = "!"  # invalid input: the engine re-prompts
    return _answer(
        lambda deadline: services.calls.step(call_sid, node, seq, digits, language, deadline)
    )


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: the primary answer failed, hand the caller to an agent."""
    log.error(
        "fallback call=%s error=%s url=%s",
        _form().get("CallSid", "-"),
        _form().get("ErrorCode", "-"),
        _form().get("ErrorUrl", "-"),
    )
    services = _services()
    call_sid, caller, language = _call_sid(), _caller(services), _language(services)
    return _answer(lambda deadline: services.calls.fallback(call_sid, caller, language, deadline))


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: remember how the call ended."""
    call_sid = _call_sid()
    call_status = _form().get("CallStatus", "")[:32]
    if call_sid:
        try:
            _services().calls.status(call_sid, call_status)
        except Exception:  # noqa: BLE001 - a status callback must never fail loudly
            log.exception("call=%s status=%s not recorded", call_sid, call_status)
    return Response("", status=204)


def _answer(work: Callable[[Deadline], tuple[Action, ...]]) -> Response:
    """Run ``work`` under the webhook deadline (in a pool thread: it must not touch the
    request) and render its actions; late or failed, the caller is handed over."""
    services = _services()

    def handed_over() -> tuple[Action, ...]:
        # Runs in this (the request's) thread, and only when the work did not answer:
        # the caller's number is parsed here, not on every webhook.
        return engine.unavailable(
            services.flow, None, call_sid=_call_sid(), caller=_caller(services),
            language=_language(services),
        ).actions  # fmt: skip

    try:
        actions = services.runner.run(work, late=handed_over, arrived=_queued_at())
    except Exception:
        # Never a 500 towards Twilio: log (no parameters, they may hold digits) and hand over.
        log.exception("webhook %s failed; routing as unavailable", request.path)
        actions = handed_over()
    renderer: twiml.Renderer = current_app.extensions["ivr.twiml"]
    return _twiml(renderer.render(actions))


def _queued_at() -> float | None:
    """When the server queued this request (the production worker says, ivr.serving)."""
    queued = request.environ.get(QUEUED_AT)
    return queued if isinstance(queued, float) else None


def _twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _form() -> form.Params:
    # Parsed once per request (the signature check already did it); never request.form.
    return form.form(request)


def _args() -> form.Params:
    return form.args(request)


def _call_sid() -> str:
    sid = _form().get("CallSid", "")
    return sid if CALL_SID.match(sid) else ""


def _caller(services: Services) -> str | None:
    return phone.normalize(_form().get("From"), services.settings.server.default_region)


def _language(services: Services) -> str | None:
    lang = _args().get("lang")
    return lang if lang in services.flow.languages else None


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return -1
