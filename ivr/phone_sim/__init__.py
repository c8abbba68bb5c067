"""A terminal phone: calls the running service like Twilio and interprets its TwiML.

``ivr call`` is the command; the pieces are pure where they can be: :mod:`.verbs` parses
TwiML, :mod:`.keys` holds Twilio's Gather rule, :mod:`.render` formats what the caller
would hear; :mod:`.transport` (signed HTTP) and :mod:`.phone` (the call loop) do the I/O.
"""

from ivr.phone_sim.keys import LineKeypad, ScriptedKeypad, TerminalKeypad, parse_script
from ivr.phone_sim.phone import CallerId, CallResult, Outcome, TerminalPhone
from ivr.phone_sim.transport import Endpoint, Transport, WebhookError, sign

__all__ = [
    "CallResult",
    "CallerId",
    "Endpoint",
    "LineKeypad",
    "Outcome",
    "ScriptedKeypad",
    "TerminalKeypad",
    "TerminalPhone",
    "Transport",
    "WebhookError",
    "parse_script",
    "sign",
]
