"""Baseline (a): the cheapest possible webhook under the same gunicorn settings.

A bare Flask app that answers every POST with one constant, 300-byte TwiML document:
whatever the product costs above this is its own work, not Flask's or gunicorn's.
"""

from __future__ import annotations

from flask import Flask, Response

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="/ivr/menu" method="POST" numDigits="1">'
    '<Say language="en-GB" voice="Polly.Amy">Please press 1.'
)
_TAIL = "</Say></Gather></Response>"
# Padded with spaces inside the Say so the document stays valid TwiML at exactly 300 bytes.
BODY = (_HEAD + " " * (300 - len(_HEAD) - len(_TAIL)) + _TAIL).encode("ascii")
assert len(BODY) == 300, len(BODY)


def create_app() -> Flask:
    """The baseline app: ``gunicorn "bench.baseline_app:create_app()"``."""
    app = Flask(__name__)

    @app.route("/", methods=["GET", "POST"])
    @app.route("/<path:_path>", methods=["GET", "POST"])
    def constant(_path: str = "") -> Response:
        return Response(BODY, mimetype="text/xml")

    return app
