"""Lockout notification: tell the account holder by SMS, at most once per lock.

The message goes to the account's mobile number (the first one in sort order; the first
number at all when none is recognisably mobile) through the Twilio REST API. It names no
digits at all — certainly none of the PIN. "At most once" is a Redis claim taken before
sending: Twilio refusing the request (it answered with an error) releases the claim so a
retry may send; an answer that never came (timeout mid-request) keeps it, because the
SMS may have gone out and a duplicate would be worse than a missing one.
"""

from __future__ import annotations

import logging

import phonenumbers
import requests
import sqlalchemy as sa
from phonenumbers import PhoneNumberType
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ivr.store.keys import SMS_CLAIM_TTL_S
from ivr.store.pins import account_phones, accounts
from workers.jobs import JobContext, current_context

log = logging.getLogger("workers.sms")

LOCKOUT_TEXT = (
    "Ihre Service-PIN wurde nach mehreren falschen Eingaben vorübergehend gesperrt. "
    "Waren Sie das nicht, melden Sie sich bitte bei unserem Kundenservice.\n"
    "Your Service PIN has been blocked for a while after several wrong entries. "
    "If this was not you, please contact our customer service."
)
# A claim outlives any retry schedule; "sent" is remembered for a week.
MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
# Twilio answers these when a retry may succeed (rate limit, its own trouble).
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

_PHONES = (
    sa.select(account_phones.c.phone)
    .join(accounts, accounts.c.id == account_phones.c.account_id)
    .where(accounts.c.customer_number == sa.bindparam("number"))
    .order_by(account_phones.c.phone)
)


class SmsDeliveryError(Exception):
    """Twilio refused the SMS for now; the message names no number and no text."""


def account_phone_numbers(engine: sa.Engine, customer_number: str) -> list[str]:
    """The account's phone numbers (E.164), sorted; empty for an unknown account."""
    with engine.connect() as conn:
        return list(conn.execute(_PHONES, {"number": customer_number}).scalars())


def pick_recipient(numbers: list[str]) -> str | None:
    """The first mobile number, else the first number, else None."""
    for number in numbers:
        try:
            kind = phonenumbers.number_type(phonenumbers.parse(number, None))
        except phonenumbers.NumberParseException:
            continue
        if kind in MOBILE:
            return number
    return numbers[0] if numbers else None


def notify_lockout(customer_number: str, lock_id: str) -> str:
    """RQ job: SMS the holder of ``customer_number`` that PIN entry is locked."""
    return send_once(current_context(), customer_number, lock_id)


def send_once(ctx: JobContext, customer_number: str, lock_id: str) -> str:
    """Send for lock ``lock_id``; returns sent, duplicate, no_phone, disabled or refused."""
    sender = ctx.settings.notify.sms_from
    if not sender:
        return "disabled"
    recipient = pick_recipient(account_phone_numbers(ctx.engine, customer_number))
    if recipient is None:
        log.info("lockout SMS skipped: the account has no phone number")
        return "no_phone"
    key = ctx.keys.sms_claim(lock_id)
    if not ctx.redis.set(key, "sending", nx=True, ex=SMS_CLAIM_TTL_S):
        log.info("lockout SMS for lock %s already sent", lock_id)
        return "duplicate"
    sender_field = "messaging_service_sid" if sender.startswith("MG") else "from_"
    try:
        message = ctx.twilio().messages.create(
            to=recipient, body=LOCKOUT_TEXT, **{sender_field: sender}
        )
    except TwilioRestException as exc:
        ctx.redis.delete(key)  # Twilio answered: nothing was sent, a retry may send
        return _refused(exc, lock_id)
    except requests.RequestException as exc:
        if not _never_sent(exc):
            return _unknown(lock_id)
        ctx.redis.delete(key)  # the request never reached Twilio: a retry may send
        raise SmsDeliveryError(f"Twilio unreachable ({type(exc).__name__})") from None
    ctx.redis.set(key, "sent", ex=SMS_CLAIM_TTL_S)
    log.info("lockout SMS for lock %s sent (%s)", lock_id, message.sid)
    return "sent"


def _never_sent(exc: requests.RequestException) -> bool:
    """True when no connection was made (refused, no route, DNS, connect timeout).

    Anything later — a read timeout, a connection dropped mid-answer — may come after
    Twilio accepted the message.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _refused(exc: TwilioRestException, lock_id: str) -> str:
    if exc.status in RETRYABLE_STATUS:
        raise SmsDeliveryError(f"Twilio answered HTTP {exc.status}, will retry") from None
    # Invalid or landline number, blocked recipient…: retrying cannot help.
    log.warning("lockout SMS for lock %s refused by Twilio (error %s)", lock_id, exc.code)
    return "refused"


def _unknown(lock_id: str) -> str:
    log.error(
        "lockout SMS for lock %s: no answer from Twilio; not retried (no duplicates)", lock_id
    )
    return "unknown"
