"""Floors: each step's unavoidable I/O and checks, written the shortest way.

One app serves a floor per step of a call, each at its own path:

- ``POST /voice/step`` (any query; the product's PIN-step URL): **PIN step**, floor (e).
  Parse the form, check Twilio's signature (one HMAC against the known public URL), one
  Redis round trip that loads the call and counts the attempt (a Lua script), one indexed
  SQLite read of the account, one HMAC of the entered PIN compared in constant time, one
  Redis round trip that saves the call together with the attempt's audit entry (a stream
  entry, like the product's), and a constant TwiML answer. No conditions on the stored
  call: it needs no prepared call.
- ``POST /floor/menu?n=<seq>&lang=<language>``: **menu step**. Signature; one Redis round
  trip loading the call, which must be at the menu at step ``n`` (else the caller is
  routed as unavailable, nothing saved); for keys 1–3, one indexed SQLite read of the
  owners of the caller's number (at most two: one owner means the PIN prompt is next,
  none or several the customer-number prompt); one Redis round trip that saves the call
  by compare-and-set (a Lua script: a concurrent step loses); the next Gather.
- ``POST /floor/customer_number?n=<seq>&lang=<language>``: **customer-number step**.
  Signature; one round trip loading the call (at the customer-number prompt at step
  ``n``); the typed number (``#`` removed) must be at most 12 digits, else it is asked
  again without a read; one indexed SQLite read of whether an account has it; kept in
  clear only if one does, else as ``?`` plus its keyed pseudonym (one HMAC, the product's
  ``PinHasher.subject``: callers type PINs into this prompt); one compare-and-set round
  trip; the PIN Gather.

The product's round trips for these steps are two (``bench/probe.py``): these floors
make the same two, but leave out what is the product's own choice rather than the step's
need: its JSON state schema (a floor call is ``node|seq|language|topic|customer``), the
retry claim (a retried request gets its first answer again; here it is refused like any
replay), the reprompt limit, keys 0, 9 and ``*``, metrics and logging. Their Gathers
have the product's shape (the PIN prompt's are its very bytes, in German); the PIN
floor's answers are short constants. ``bench/floor_requests.py`` builds their requests
and prepares their calls in Redis; ``tests/bench/test_floor.py`` checks the PIN floor
and, side by side with the product, the menu and customer-number floors.

They are the "how fast can this I/O go on this stack" reference: a product step divided
by its floor says how much of the product's cost is its own logic. Never a product.

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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask, Response, request

from bench.webhooks import PUBLIC_BASE
from ivr.config import PinStoreSettings
from ivr.store.hashing import PinHasher

KEY_ID = PinStoreSettings().pepper_id  # the key id the benchmark's stores are filled under
MENU_PATH = "/floor/menu"
CUSTOMER_NUMBER_PATH = "/floor/customer_number"
TTL_S = 3600
# The topics of the menu keys that lead to the account (flows/service_pin.toml).
TOPICS = {"1": "payments", "2": "contract", "3": "cancellation"}
MAX_CUSTOMER_DIGITS = 12  # [nodes.customer_number] max_digits

_LOAD_AND_COUNT = """
local call = redis.call('GET', KEYS[1])
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {call, n}
"""
# Compare-and-set against the state as loaded: of two requests for one step, one wins.
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_ACCOUNT = (
    "SELECT a.customer_number, a.pin_key_id, a.pin_hash FROM account_phones p "
    "JOIN accounts a ON a.id = p.account_id WHERE p.phone = ?"
)
_OWNERS = (
    "SELECT a.customer_number FROM account_phones p JOIN accounts a ON a.id = p.account_id "
    "WHERE p.phone = ? ORDER BY a.customer_number LIMIT 2"
)
_EXISTS = "SELECT 1 FROM accounts WHERE customer_number = ?"
_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><Response>'
_GATHER = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/step?node=pin'
    b'&amp;n=3&amp;lang=en" finishOnKey="#" input="dtmf" numDigits="6" timeout="5">'
    b"<Say>That PIN was not right. Please try again.</Say></Gather></Response>"
)
_VERIFIED = _HEAD + (
    b'<Say>Thank you.</Say><Enqueue workflowSid="WW0"><Task>{"reason":"verified"}</Task>'
    b"</Enqueue></Response>"
)
_UNAVAILABLE = _HEAD + (
    b'<Say>Connecting you.</Say><Enqueue workflowSid="WW0"><Task>{"reason":"unavailable"}'
    b"</Task></Enqueue></Response>"
)
# The next Gather of a step, shaped like the product's (its URL, keys, the prompt said):
# the answer's bytes are part of the step's cost.
_NEXT = {
    "pin": ("/voice/step?node=pin&amp;n={n}&amp;lang={lang}", "#", ' numDigits="6"',
            "Bitte geben Sie jetzt Ihre 6-stellige Service-PIN ein und bestätigen Sie mit der "
            "Rautetaste. Sie finden Ihre Service-PIN in Ihrem Kundenkonto unter "
            "Kontoeinstellungen, Benutzerdaten."),
    "customer_number": (CUSTOMER_NUMBER_PATH + "?n={n}&amp;lang={lang}", "#", "",
                        "Bitte geben Sie Ihre Kundennummer ein und bestätigen Sie mit der "
                        "Rautetaste."),
    "menu": (MENU_PATH + "?n={n}&amp;lang={lang}", "", ' numDigits="1"',
             "Diese Eingabe ist leider ungültig. Für Zahlungen, Rechnungen oder Kontodaten "
             "drücken Sie die 1."),
}  # fmt: skip


def call_key(call_sid: str) -> str:
    """The Redis key of a floor call."""
    return f"floor:call:{call_sid}"


def call_state(node: str, seq: int, language: str, topic: str = "", customer: str = "") -> bytes:
    """A floor call's stored state: at ``node``'s Gather number ``seq``."""
    return f"{node}|{seq}|{language}|{topic}|{customer}".encode()


def _gather(node: str, seq: int, language: str) -> bytes:
    url, finish, digits, say = _NEXT[node]
    url = url.format(n=seq, lang=language)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="{url}" '
        f'actionOnEmptyResult="true" finishOnKey="{finish}" input="dtmf" method="POST"{digits} '
        f'timeout="6"><Say language="{language}" voice="Polly.Vicki-Neural">{say}</Say>'
        f'</Gather><Redirect method="POST">{url}</Redirect></Response>'
    ).encode()


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """The floor app: ``gunicorn "bench.floor_app:create_app()"`` (``env``: os.environ)."""
    env = os.environ if env is None else env
    app = Flask(__name__)
    client = redis.Redis.from_url(env["FLOOR_REDIS_URL"])
    script = client.register_script(_LOAD_AND_COUNT)
    save = client.register_script(_SAVE)
    token = env["TWILIO_AUTH_TOKEN"].encode()
    # The product's digest, one HMAC (a digest format change cannot silently fail here).
    hasher = PinHasher({KEY_ID: env["IVR_PIN_PEPPER"].encode()}, KEY_ID)
    database = env["FLOOR_PIN_DB"]
    local = threading.local()

    def rows(sql: str, value: str) -> list[Any]:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        found: list[Any] = local.db.execute(sql, (value,)).fetchall()
        return found

    def signed() -> bool:
        """Twilio's signature: one HMAC over the public URL and the sorted fields."""
        mac = hmac.new(token, (PUBLIC_BASE + request.full_path).encode(), hashlib.sha1)
        for name in sorted(request.form):
            mac.update((name + request.form[name]).encode())
        given = request.headers.get("X-Twilio-Signature", "").encode()
        return hmac.compare_digest(base64.b64encode(mac.digest()), given)

    def step(node: str, decide: Callable[[list[str]], str]) -> Response:
        """A Gather's answer at ``node``: the signature; the call's load (one round trip),
        which must be at this Gather (else an unknown call, a replay or another step's
        request: routed as unavailable, nothing saved); ``decide`` (its reads; it fills
        the call's fields and names the next node); the compare-and-set save (one round
        trip: of two requests for one step, one wins); the next node's Gather."""
        if not signed():
            return Response(status=403)
        key = call_key(request.form["CallSid"])
        loaded: bytes | None = client.get(key)  # type: ignore[assignment]
        fields = loaded.decode().split("|") if loaded is not None else []
        if loaded is None or fields[:2] != [node, request.args.get("n")]:
            return Response(_UNAVAILABLE, mimetype="text/xml")
        then = decide(fields)
        _, seq, language, topic, customer = fields
        new = call_state(then, int(seq) + 1, language, topic, customer)
        if not save(keys=[key], args=[loaded, new, TTL_S]):
            return Response(_UNAVAILABLE, mimetype="text/xml")  # a concurrent step won
        return Response(_gather(then, int(seq) + 1, language), mimetype="text/xml")

    def menu(fields: list[str]) -> str:
        topic = TOPICS.get(request.form.get("Digits", ""))
        if topic is None:  # no input or an invalid key: asked again, nothing looked up
            return "menu"
        owners = rows(_OWNERS, request.form["From"])
        fields[3:] = [topic, owners[0][0] if len(owners) == 1 else ""]
        return "pin" if len(owners) == 1 else "customer_number"

    def customer_number(fields: list[str]) -> str:
        typed = request.form.get("Digits", "").removesuffix("#")
        if not (typed.isascii() and typed.isdigit() and len(typed) <= MAX_CUSTOMER_DIGITS):
            return "customer_number"
        # Kept in clear only if an account has it: callers type PINs into this prompt.
        known = rows(_EXISTS, typed)
        fields[4] = typed if known else "?" + hasher.subject("account", typed)
        return "pin"

    @app.get("/")
    def ready() -> str:
        return "ok"

    @app.post(MENU_PATH)
    def menu_step() -> Response:
        return step("menu", menu)

    @app.post(CUSTOMER_NUMBER_PATH)
    def customer_number_step() -> Response:
        return step("customer_number", customer_number)

    @app.post("/voice/step")
    def pin_step() -> Response:
        if not signed():
            return Response(status=403)
        form = request.form
        sid, phone = form["CallSid"], form["From"]
        script(keys=[call_key(sid), f"floor:tries:{phone}"], args=[TTL_S])
        found = rows(_ACCOUNT, phone)
        right = False
        if found:
            number, key_id, digest = found[0]
            right = hasher.matches(number, form.get("Digits", ""), key_id, digest)
        # The save and the audit entry (never the digits) share the second round trip.
        outcome = "verified" if right else "wrong"
        at = datetime.now(UTC).isoformat()
        with client.pipeline(transaction=False) as pipe:
            pipe.set(call_key(sid), outcome, ex=TTL_S)
            entry = {"c": sid, "a": found[0][0] if found else "", "f": phone, "v": outcome,
                     "t": at}  # fmt: skip
            pipe.xadd("floor:audit", entry)  # type: ignore[arg-type]
            pipe.expire("floor:audit", TTL_S)
            pipe.execute()
        return Response(_VERIFIED if right else _GATHER, mimetype="text/xml")

    return app
