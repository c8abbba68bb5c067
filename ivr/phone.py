"""Caller numbers: E.164 normalisation and withheld-number detection (pure)."""

from __future__ import annotations

import phonenumbers

# Twilio reports a withheld caller ID as one of these (SPEC §3); the numeric ones are
# the keypad spellings of ANONYMOUS, RESTRICTED, BLOCKED, UNAVAILABLE and UNKNOWN.
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+86282452253",
        "+8656696",
    }
)


def normalize(raw: str | None, default_region: str = "DE") -> str | None:
    """Return ``raw`` in E.164, or None when it is withheld or not a valid number."""
    if raw is None:
        return None
    text = raw.strip()
    if text.lower() in WITHHELD:
        return None
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
