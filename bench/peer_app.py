"""Peer (b): the welcome webhook of Twilio's own sample IVR, re-implemented minimally.

Behaves like ``/ivr/welcome`` of TwilioDevEd's ivr-phone-tree-python: one ``<Gather>``
holding one ``<Say>``, built per request with Twilio's helper library; no signature
check, no store. It is the "what a typical Twilio Flask webhook costs" reference.
"""

from __future__ import annotations

from flask import Flask, Response
from twilio.twiml.voice_response import VoiceResponse

WELCOME = (
    "Thanks for calling the E T Phone Home Service. "
    "Please press 1 for directions. Press 2 for a list of planets to call."
)


def welcome() -> Response:
    """The sample's welcome step: a one-digit Gather around a looping Say."""
    response = VoiceResponse()
    with response.gather(num_digits=1, action="/ivr/menu", method="POST") as gather:
        gather.say(WELCOME, voice="Polly.Amy", language="en-GB", loop=3)
    return Response(str(response), mimetype="text/xml")


def create_app() -> Flask:
    """The peer app: ``gunicorn "bench.peer_app:create_app()"``."""
    app = Flask(__name__)
    app.add_url_rule("/ivr/welcome", "welcome", welcome, methods=["GET", "POST"])
    return app
