"""CRM webhook: POST the screen-pop JSON, signed, once per call and event.

Signature (``X-IVR-Signature: t=<unix seconds>,v1=<hex>``): HMAC-SHA256 with
``[screen_pop] webhook_secret`` over ``"<t>.<raw body>"``. Receivers recompute it, compare
in constant time and reject a ``t`` far from their clock, so a captured request cannot be
replayed later. ``X-IVR-Idempotency-Key`` (``<CallSid>:<event>``) is the same on every
retry: a receiver that saw a request time out on our side and then gets it again can drop
the duplicate. After a 2xx the job marks the delivery in Redis, so a re-run never POSTs
again. Any failure (timeout, connection error, non-2xx) raises and RQ retries with backoff;
after the last retry the job stays in rq's failed registry (with its payload) for requeue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import requests

from ivr.jobs import digest_of
from ivr.store.keys import DELIVERED_TTL_S
from workers.jobs import JobContext, current_context

log = logging.getLogger("workers.crm")

SIGNATURE_HEADER = "X-IVR-Signature"
IDEMPOTENCY_HEADER = "X-IVR-Idempotency-Key"
EVENT_HEADER = "X-IVR-Event"
# Receivers should refuse signatures older (or newer) than this.
DEFAULT_TOLERANCE_S = 300


class CrmDeliveryError(Exception):
    """The CRM did not accept the webhook; the message names no URL, body or secret."""


def body_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-IVR-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """What a receiver does: True only for a valid, fresh signature of ``body``."""
    fields = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def deliver_webhook(call_sid: str, event: str, payload: dict[str, Any]) -> str:
    """RQ job: POST ``payload`` to the CRM unless this call's ``event`` was delivered."""
    return post_once(current_context(), call_sid, event, payload)


def post_once(ctx: JobContext, call_sid: str, event: str, payload: Mapping[str, Any]) -> str:
    """Deliver once; returns ``delivered``, ``duplicate`` or ``disabled``."""
    hook = ctx.settings.screen_pop
    if not hook.webhook_url:
        return "disabled"  # switched off after enqueueing: nothing to deliver to
    marker = ctx.keys.crm_delivered(digest_of(call_sid, event))
    if ctx.redis.exists(marker):
        log.info("call=%s event=%s already delivered", call_sid, event)
        return "duplicate"
    body = body_bytes(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "service-pin-ivr",
        SIGNATURE_HEADER: sign(hook.webhook_secret, int(ctx.clock().timestamp()), body),
        IDEMPOTENCY_HEADER: f"{call_sid}:{event}",
        EVENT_HEADER: event,
    }
    started = time.monotonic()
    try:
        response = ctx.http.post(
            hook.webhook_url, data=body, headers=headers, timeout=hook.timeout_s,
            allow_redirects=False, stream=True,
        )  # fmt: skip
        response.close()  # the body is never read: a CRM cannot make us download much
    except requests.RequestException as exc:
        # The exception text would carry the URL (it may hold credentials): type only.
        log.warning("call=%s event=%s CRM unreachable (%s)", call_sid, event, type(exc).__name__)
        raise CrmDeliveryError(f"CRM webhook failed: {type(exc).__name__}") from None
    elapsed = time.monotonic() - started
    if not 200 <= response.status_code < 300:
        log.warning("call=%s event=%s CRM answered %d", call_sid, event, response.status_code)
        raise CrmDeliveryError(f"CRM webhook answered HTTP {response.status_code}")
    ctx.redis.set(marker, "1", ex=DELIVERED_TTL_S)
    log.info("call=%s event=%s delivered in %.3fs", call_sid, event, elapsed)
    return "delivered"
