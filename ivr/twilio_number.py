"""Point a Twilio number's voice webhooks at the service, and put them back afterwards.

``ivr dev --twilio-number`` uses :func:`pointed_at`: it finds the number among the
account's incoming phone numbers, remembers its voice URL, status callback and fallback
URL (and a TwiML App, which would take precedence over the URL), points them at the
service, and restores exactly the old values on exit. The REST client comes in as a
parameter, so tests can talk to a local stand-in for api.twilio.com.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.exceptions import IVRError

API_TIMEOUT_S = 10.0
ClientFactory = Callable[[str, str], Any]
"""(account_sid, auth_token) -> a twilio.rest.Client."""


class TwilioNumberError(IVRError):
    """The number could not be looked up or changed; the message names the fix."""


@dataclass(frozen=True)
class VoiceSettings:
    """The webhook settings of a number that decide where its calls go."""

    voice_url: str
    voice_method: str
    status_callback: str
    status_callback_method: str
    voice_fallback_url: str
    voice_fallback_method: str
    voice_application_sid: str


@dataclass(frozen=True)
class OwnedNumber:
    sid: str
    phone_number: str
    voice: VoiceSettings


def rest_client(account_sid: str, auth_token: str) -> Any:
    """The real Twilio REST client, with a timeout so a hanging API cannot block exit."""
    return Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=API_TIMEOUT_S))


def service_settings(base_url: str) -> VoiceSettings:
    """The service's webhooks under ``base_url`` (SPEC §7); no TwiML App in the way."""
    base = base_url.rstrip("/")
    return VoiceSettings(
        voice_url=f"{base}/voice",
        voice_method="POST",
        status_callback=f"{base}/voice/status",
        status_callback_method="POST",
        voice_fallback_url=f"{base}/voice/fallback",
        voice_fallback_method="POST",
        voice_application_sid="",
    )


def find_number(client: Any, phone_number: str) -> OwnedNumber:
    """The account's number ``phone_number`` (E.164); TwilioNumberError if not owned."""
    try:
        # The filter also matches partial numbers; only an exact match counts.
        found = client.incoming_phone_numbers.list(phone_number=phone_number, limit=20)
    except (TwilioException, OSError) as exc:
        raise _api_error(exc, f"looking up {phone_number}") from None
    matches = [n for n in found if n.phone_number == phone_number]
    if not matches:
        raise TwilioNumberError(
            f"the Twilio account does not own {phone_number}: pass one of its numbers in "
            "E.164 (Console > Phone Numbers > Active numbers) or check [twilio] account_sid"
        )
    number = matches[0]
    voice = VoiceSettings(
        voice_url=number.voice_url or "",
        voice_method=number.voice_method or "POST",
        status_callback=number.status_callback or "",
        status_callback_method=number.status_callback_method or "POST",
        voice_fallback_url=number.voice_fallback_url or "",
        voice_fallback_method=number.voice_fallback_method or "POST",
        voice_application_sid=number.voice_application_sid or "",
    )
    return OwnedNumber(number.sid, phone_number, voice)


def apply(client: Any, number: OwnedNumber, voice: VoiceSettings) -> None:
    """Set ``voice`` on ``number`` in one update request."""
    try:
        client.incoming_phone_numbers(number.sid).update(**asdict(voice))
    except (TwilioException, OSError) as exc:
        raise _api_error(exc, f"updating {number.phone_number}") from None


@contextmanager
def pointed_at(
    client: Any, phone_number: str, base_url: str, warn: Callable[[str], None]
) -> Iterator[OwnedNumber]:
    """Point ``phone_number`` at ``base_url`` while the block runs; restore it afterwards.

    Restoring also happens on Ctrl-C and on errors. If restoring fails, ``warn`` gets one
    line with the old values so they can be put back in the console by hand.
    """
    number = find_number(client, phone_number)
    apply(client, number, service_settings(base_url))
    try:
        yield number
    finally:
        try:
            apply(client, number, number.voice)
        except TwilioNumberError as exc:
            old = number.voice
            warn(
                f"could not restore {phone_number} ({exc}); set it back by hand: voice URL "
                f"{old.voice_url or '(empty)'}, status callback {old.status_callback or '(empty)'}"
                f", fallback URL {old.voice_fallback_url or '(empty)'}"
            )


def _status(exc: TwilioException) -> tuple[int | None, str]:
    """HTTP status and message: TwilioRestException has them; a failed list page carries
    the response as its second argument."""
    if isinstance(exc, TwilioRestException):
        return exc.status, str(exc.msg)
    response = exc.args[1] if len(exc.args) > 1 else None
    return getattr(response, "status_code", None), str(getattr(response, "text", exc))


def _api_error(exc: Exception, doing: str) -> TwilioNumberError:
    if isinstance(exc, TwilioException):
        status, message = _status(exc)
        if status in (401, 403):
            return TwilioNumberError(
                f"Twilio refused the credentials while {doing} (HTTP {status}): check "
                "[twilio] account_sid and auth_token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)"
            )
        message = " ".join(message.split())[:200]
        return TwilioNumberError(f"Twilio API error while {doing} (HTTP {status}): {message}")
    return TwilioNumberError(
        f"cannot reach the Twilio API while {doing} ({type(exc).__name__}): "
        "check your internet connection"
    )
