"""Floor (e): the PIN step's unavoidable I/O and checks, written the shortest way.

What any implementation of the PIN step must do, and nothing else: read the form, check
Twilio's signature (one HMAC against the known public URL), one Redis round trip that
loads the call and counts the attempt (a Lua script), one indexed SQLite read of the
account, one HMAC of the entered PIN compared in constant time, one Redis round trip that
saves the call together with the attempt's audit entry (a stream entry, like the
product's), and a constant TwiML answer. No flow, no call-state schema, no conditions on
the stored call, no metrics, no logging.

It is the "how fast can this I/O go on this stack" reference: the product's PIN step
divided by this floor says how much of the product's cost is its own logic; the floor
divided by the peer says what the I/O alone costs on these two cores. Its answers are
not the product's and it keeps no real call state; it is never a product.

Configured by the environment that ``bench/run`` gives it: ``FLOOR_REDIS_URL``,
``FLOOR_PIN_DB`` (a PIN store the benchmark filled), ``TWILIO_AUTH_TOKEN`` and
``IVR_PIN_PEPPER``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

import redis
from flask import Flask, Response, request

from bench.webhooks import PUBLIC_BASE
from ivr.config import PinStoreSettings
from ivr.store.hashing import PinHasher

KEY_ID = PinStoreSettings().pepper_id  # the key id the benchmark's stores are filled under

_LOAD_AND_COUNT = """
local call = redis.call('GET', KEYS[1])
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {call, n}
"""
_ACCOUNT = (
    "SELECT a.customer_number, a.pin_key_id, a.pin_hash FROM account_phones p "
    "JOIN accounts a ON a.id = p.account_id WHERE p.phone = ?"
)
_TTL_S = 3600
_GATHER = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/step?node=pin'
    b'&amp;n=3&amp;lang=en" finishOnKey="#" input="dtmf" numDigits="6" timeout="5">'
    b"<Say>That PIN was not right. Please try again.</Say></Gather></Response>"
)
_VERIFIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Thank you.</Say>'
    b'<Enqueue workflowSid="WW0"><Task>{"reason":"verified"}</Task></Enqueue></Response>'
)


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """The floor app: ``gunicorn "bench.floor_app:create_app()"`` (``env``: os.environ)."""
    env = os.environ if env is None else env
    app = Flask(__name__)
    client = redis.Redis.from_url(env["FLOOR_REDIS_URL"])
    script = client.register_script(_LOAD_AND_COUNT)
    token = env["TWILIO_AUTH_TOKEN"].encode()
    # The product's digest, one HMAC (a digest format change cannot silently fail here).
    hasher = PinHasher({KEY_ID: env["IVR_PIN_PEPPER"].encode()}, KEY_ID)
    database = env["FLOOR_PIN_DB"]
    local = threading.local()

    def account(phone: str) -> tuple[str, str, str] | None:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        row = local.db.execute(_ACCOUNT, (phone,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    @app.get("/")
    def ready() -> str:
        return "ok"

    @app.post("/voice/step")
    def pin_step() -> Response:
        form = request.form
        signed = PUBLIC_BASE + request.full_path
        mac = hmac.new(token, signed.encode(), hashlib.sha1)
        for name in sorted(form):
            mac.update((name + form[name]).encode())
        given = request.headers.get("X-Twilio-Signature", "").encode()
        if not hmac.compare_digest(base64.b64encode(mac.digest()), given):
            return Response(status=403)
        sid, phone = form["CallSid"], form["From"]
        script(keys=[f"floor:call:{sid}", f"floor:tries:{phone}"], args=[_TTL_S])
        found = account(phone)
        right = False
        if found is not None:
            number, key_id, digest = found
            right = hasher.matches(number, form.get("Digits", ""), key_id, digest)
        # The save and the audit entry (never the digits) share the second round trip.
        outcome = "verified" if right else "wrong"
        at = datetime.now(UTC).isoformat()
        with client.pipeline(transaction=False) as pipe:
            pipe.set(f"floor:call:{sid}", outcome, ex=_TTL_S)
            entry = {"c": sid, "a": found[0] if found else "", "f": phone, "v": outcome, "t": at}
            pipe.xadd("floor:audit", entry)  # type: ignore[arg-type]
            pipe.expire("floor:audit", _TTL_S)
            pipe.execute()
        return Response(_VERIFIED if right else _GATHER, mimetype="text/xml")

    return app
