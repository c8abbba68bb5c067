"""Webhook requests exactly as Twilio sends them: form parameters, URL, X-Twilio-Signature.

Each request is signed with Twilio's own ``RequestValidator.compute_signature`` over the
public URL, ahead of time, and written as one line for ``bench/wrk/replay.lua``::

    POST <TAB> /path?query <TAB> <signature> <TAB> <form-urlencoded body>
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote_plus

from twilio.request_validator import RequestValidator

PUBLIC_BASE = "https://ivr-bench.example.com"
ACCOUNT_SID = "AC" + "b" * 32
TO = "+4930555000"
# Where the caller and the called number are, as Twilio reports them (geo lookup).
_GEO = {"City": "", "Country": "DE", "State": "", "Zip": ""}


@dataclass(frozen=True)
class Webhook:
    """One POST Twilio would make: path with query string, and its form parameters."""

    path: str
    params: dict[str, str] = field(hash=False)


def voice_params(
    call_sid: str, caller: str, status: str = "in-progress", digits: str | None = None
) -> dict[str, str]:
    """The parameters of a Twilio voice webhook (all of them, not a minimal subset).

    Body size and parameter count matter for the cost of parsing and of the signature,
    so the benchmark sends what Twilio sends; Gather answers add Digits and friends.
    """
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Called": TO,
        "Caller": caller,
        "Direction": "inbound",
        "From": caller,
        "To": TO,
    }
    for prefix in ("Called", "Caller", "From", "To"):
        params.update({prefix + name: value for name, value in _GEO.items()})
    if digits is not None:
        params.update({"Digits": digits, "FinishedOnKey": "", "msg": "Gather End"})
    return params


def status_params(call_sid: str, caller: str) -> dict[str, str]:
    """A status callback for a call that just ended."""
    params = voice_params(call_sid, caller, status="completed")
    params.update({"CallDuration": "42", "CallbackSource": "call-progress-events"})
    params.update({"SequenceNumber": "0", "Timestamp": "Mon, 01 Jan 2024 12:00:00 +0000"})
    return params


class CallSids:
    """Unique CallSids for one run: a random run tag plus a counter (never reused)."""

    def __init__(self) -> None:
        self._tag = secrets.token_hex(4)
        self._next = 0

    def new(self) -> str:
        self._next += 1
        return f"CA{self._tag}{self._next:024x}"


class Signer:
    """Turns webhooks into signed request lines for wrk."""

    def __init__(self, auth_token: str, public_base: str = PUBLIC_BASE) -> None:
        self._validator = RequestValidator(auth_token)
        self._base = public_base.rstrip("/")

    def signature(self, hook: Webhook) -> str:
        """The X-Twilio-Signature Twilio would send for ``hook``."""
        return str(self._validator.compute_signature(self._base + hook.path, hook.params))

    def line(self, hook: Webhook) -> str:
        """One request line: method, path, signature and body, tab-separated."""
        return f"POST\t{hook.path}\t{self.signature(hook)}\t{form_body(hook.params)}\n"


def form_body(params: dict[str, str]) -> str:
    """``urllib.parse.urlencode(params)``, several times faster for repetitive values."""
    return "&".join(f"{_quote(name)}={_quote(value)}" for name, value in params.items())


# Most names and values repeat from request to request; quoting dominated generation.
_quote = lru_cache(maxsize=1 << 16)(quote_plus)


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write request lines to ``path``; returns how many were written."""
    count = 0
    with path.open("w", encoding="ascii") as out:
        for line in lines:
            out.write(line)
            count += 1
    return count
