"""The console's words, German first with English, and how a screen-pop is described.

Pure: no Flask. Templates get :func:`texts` as ``t``; the board script gets the subset in
:data:`SCRIPT_KEYS` so rows added live read exactly like rows rendered by the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"

_DE: dict[str, str] = {
    "title": "Agentenkonsole",
    "switch_language": "English",
    "login": "Anmelden",
    "username": "Benutzername",
    "password": "Passwort",
    "login_failed": "Anmeldung fehlgeschlagen. Bitte Benutzername und Passwort prüfen.",
    "login_throttled": "Zu viele Fehlversuche. Bitte in 15 Minuten erneut versuchen.",
    "session_expired": "Die Sitzung ist abgelaufen oder ungültig. Bitte erneut versuchen.",
    "logout": "Abmelden",
    "supervisor": "Supervisor",
    "agents": "Agenten",
    "agents_intro": "Beendet alle offenen Sitzungen eines Agenten, z. B. bei einem verlorenen "
    "Gerät; er muss sich neu anmelden.",
    "end_sessions": "Sitzungen beenden",
    "sessions_ended": "{count} Sitzung(en) von {name} beendet.",
    "board": "Aktuelle Anrufe",
    "live": "Live",
    "reconnecting": "Verbindung unterbrochen – verbinde neu …",
    "col_identification": "Identifizierung",
    "col_age": "Dauer",
    "col_caller": "Anrufer",
    "col_customer": "Kunde",
    "col_topic": "Anliegen",
    "col_reason": "Grund",
    "col_state": "Status",
    "identified": "Identifiziert",
    "not_identified": "Nicht identifiziert",
    "identifying": "Identifizierung läuft",
    "identifying_hint": "Der Anrufer ist noch im Sprachmenü; sobald er durchgestellt wird, "
    "steht hier, ob er identifiziert ist.",
    "ended_in_ivr": "Im Sprachmenü beendet",
    "ended_before_agent": "Vor Erreichen eines Agenten beendet",
    "in_ivr": "Im Sprachmenü",
    "routed": "Zum Agenten geleitet",
    "withheld": "Rufnummer unterdrückt",
    "no_calls": "Zurzeit keine Anrufe.",
    "open": "Öffnen",
    "topic_payments": "Zahlungen, Rechnungen, Kontodaten",
    "topic_contract": "Vertragsdaten",
    "topic_cancellation": "Kündigung / Datenauskunft",
    "topic_other": "Sonstiges Anliegen",
    "topic_none": "noch nicht gewählt",
    "topic_none_ended": "keines gewählt",
    "reason_verified": "PIN bestätigt",
    "reason_wrong_pin": "PIN falsch",
    "reason_locked": "PIN-Eingabe gesperrt",
    "reason_no_input": "Keine Eingabe",
    "reason_not_required": "Nicht erforderlich",
    "reason_unavailable": "System nicht verfügbar",
    "reason_none": "läuft noch",
    "reason_none_ended": "Nicht durchgestellt",
    "explain_verified": "Die Service-PIN wurde in diesem Anruf korrekt eingegeben.",
    "explain_wrong_pin": "Die Service-PIN wurde falsch eingegeben.",
    "explain_locked": "Die PIN-Eingabe ist nach zu vielen Fehlversuchen vorübergehend "
    "gesperrt (Konto oder Rufnummer).",
    "explain_no_input": "Keine oder keine gültige Eingabe; der Anrufer wurde durchgestellt.",
    "explain_not_required": "Für dieses Anliegen ist keine Identifizierung nötig.",
    "explain_unavailable": "Ein System (Redis oder PIN-Speicher) war nicht erreichbar; "
    "der Anrufer wurde ohne Prüfung durchgestellt.",
    "explain_none": "Der Anrufer ist noch im Sprachmenü.",
    "explain_ended": "Der Anruf endete im Sprachmenü, bevor er einen Agenten erreichte; "
    "der Anrufer wurde nicht identifiziert.",
    "warning": "Keine Auskünfte zu Zahlungen, Rechnungen, Kontodaten, Vertragsänderungen "
    "oder Kündigungen.",
    "customer_number": "Kundennummer",
    "name": "Name",
    "claimed": "Genannte Kundennummer (nicht bestätigt)",
    "claimed_unknown": "unbekannte Nummer (kein Kundenkonto)",
    "caller": "Anrufer",
    "topic": "Anliegen",
    "language": "Sprache",
    "attempts": "PIN-Versuche",
    "started_at": "Anrufbeginn",
    "verified_at": "Bestätigt um",
    "updated_at": "Stand",
    "what_happened": "Verlauf",
    "times": "Zeitpunkte",
    "back": "Zur Übersicht",
    "lang_de-DE": "Deutsch",
    "lang_en-US": "Englisch",
    "unlock_title": "Konto entsperren",
    "unlock_button": "Konto {number} entsperren",
    "locked_for": "Konto {number} ist noch {minutes} min gesperrt.",
    "not_locked": "Konto {number} ist nicht gesperrt.",
    "unlocked": "Konto {number} wurde entsperrt (protokolliert).",
    "nothing_to_unlock": "Konto {number} hatte keine Sperre; der Vorgang wurde protokolliert.",
    "unlock_failed": "Entsperren nicht möglich: ein System ist nicht erreichbar.",
    "no_account": "Dieser Anruf nennt keine Kundennummer.",
    "disabled_title": "Agentenkonsole deaktiviert",
    "disabled": "Konsole deaktiviert: [console.agents] in der Konfiguration eintragen.",
    "not_found": "Diesen Anruf gibt es nicht (mehr).",
    "forbidden": "Dafür fehlt die Berechtigung.",
    "unavailable": "Vorübergehend nicht verfügbar. Bitte gleich noch einmal versuchen.",
    "status_queued": "in Warteschlange",
    "status_ringing": "klingelt",
    "status_in-progress": "verbunden",
    "status_completed": "beendet",
    "status_busy": "besetzt",
    "status_failed": "fehlgeschlagen",
    "status_no-answer": "keine Antwort",
    "status_canceled": "abgebrochen",
}

_EN: dict[str, str] = {
    "title": "Agent console",
    "switch_language": "Deutsch",
    "login": "Log in",
    "username": "Username",
    "password": "Password",
    "login_failed": "Login failed. Please check username and password.",
    "login_throttled": "Too many failed attempts. Please try again in 15 minutes.",
    "session_expired": "The session has expired or is invalid. Please try again.",
    "logout": "Log out",
    "supervisor": "Supervisor",
    "agents": "Agents",
    "agents_intro": "Ends every open session of an agent, e.g. after a lost device; they "
    "must log in again.",
    "end_sessions": "End sessions",
    "sessions_ended": "{count} session(s) of {name} ended.",
    "board": "Current calls",
    "live": "Live",
    "reconnecting": "Connection lost – reconnecting …",
    "col_identification": "Identification",
    "col_age": "Age",
    "col_caller": "Caller",
    "col_customer": "Customer",
    "col_topic": "Topic",
    "col_reason": "Reason",
    "col_state": "State",
    "identified": "Identified",
    "not_identified": "Not identified",
    "identifying": "Identification running",
    "identifying_hint": "The caller is still in the voice menu; once they are put through, "
    "this shows whether they are identified.",
    "ended_in_ivr": "Ended in the IVR",
    "ended_before_agent": "Ended before reaching an agent",
    "in_ivr": "In the IVR",
    "routed": "Routed to agents",
    "withheld": "Number withheld",
    "no_calls": "No calls right now.",
    "open": "Open",
    "topic_payments": "Payments, invoices, account data",
    "topic_contract": "Contract details",
    "topic_cancellation": "Cancellation / data request",
    "topic_other": "Other concern",
    "topic_none": "not chosen yet",
    "topic_none_ended": "none chosen",
    "reason_verified": "PIN verified",
    "reason_wrong_pin": "Wrong PIN",
    "reason_locked": "PIN entry locked",
    "reason_no_input": "No input",
    "reason_not_required": "Not required",
    "reason_unavailable": "System unavailable",
    "reason_none": "in progress",
    "reason_none_ended": "Not put through",
    "explain_verified": "The Service-PIN was entered correctly in this call.",
    "explain_wrong_pin": "The Service-PIN was entered wrongly.",
    "explain_locked": "PIN entry is temporarily locked after too many failures "
    "(account or caller number).",
    "explain_no_input": "No input or no valid input; the caller was put through.",
    "explain_not_required": "This concern needs no identification.",
    "explain_unavailable": "A system (Redis or the PIN store) did not answer; the caller "
    "was put through unchecked.",
    "explain_none": "The caller is still in the voice menu.",
    "explain_ended": "The call ended in the voice menu before reaching an agent; the caller "
    "was not identified.",
    "warning": "No information on payments, invoices, account data, contract changes "
    "or cancellations.",
    "customer_number": "Customer number",
    "name": "Name",
    "claimed": "Customer number given (not verified)",
    "claimed_unknown": "unknown number (no customer account)",
    "caller": "Caller",
    "topic": "Topic",
    "language": "Language",
    "attempts": "PIN attempts",
    "started_at": "Call started",
    "verified_at": "Verified at",
    "updated_at": "As of",
    "what_happened": "What happened",
    "times": "Times",
    "back": "Back to the board",
    "lang_de-DE": "German",
    "lang_en-US": "English",
    "unlock_title": "Unlock account",
    "unlock_button": "Unlock account {number}",
    "locked_for": "Account {number} is locked for {minutes} more min.",
    "not_locked": "Account {number} is not locked.",
    "unlocked": "Account {number} was unlocked (audited).",
    "nothing_to_unlock": "Account {number} had no lock; the action was audited.",
    "unlock_failed": "Cannot unlock: a system is not reachable.",
    "no_account": "This call names no customer number.",
    "disabled_title": "Console disabled",
    "disabled": "Console disabled: configure [console.agents].",
    "not_found": "This call does not exist (any more).",
    "forbidden": "You are not allowed to do this.",
    "unavailable": "Temporarily unavailable. Please try again in a moment.",
    "status_queued": "queued",
    "status_ringing": "ringing",
    "status_in-progress": "connected",
    "status_completed": "ended",
    "status_busy": "busy",
    "status_failed": "failed",
    "status_no-answer": "no answer",
    "status_canceled": "canceled",
}

_TEXTS = {"de": _DE, "en": _EN}

# What board.js needs to render a row the way board.html does.
SCRIPT_KEYS = tuple(
    key
    for key in _DE
    if key.startswith(("topic_", "reason_", "status_"))
    or key in ("identified", "not_identified", "identifying", "in_ivr", "routed", "withheld",
               "open")
)  # fmt: skip

# Where a call stands for an agent. Only a routed call is identified or not: before that
# the IVR is still asking (or the caller hung up there), and red would be a false alarm.
IDENTIFIED, NOT_IDENTIFIED = "identified", "not_identified"
IDENTIFYING, ENDED_IN_IVR = "identifying", "ended_in_ivr"


def language(value: Any) -> str:
    """``value`` if it is a console language, else German."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def texts(lang: str) -> Mapping[str, str]:
    """Every text in ``lang`` (German for anything unknown)."""
    return _TEXTS[language(lang)]


def every_language() -> list[tuple[str, Mapping[str, str]]]:
    """Each console language with its texts, German first (for pages without a session)."""
    return [(code, _TEXTS[code]) for code in LANGUAGES]


def script_texts(lang: str) -> dict[str, str]:
    """The texts the board script uses."""
    words = texts(lang)
    return {key: words[key] for key in SCRIPT_KEYS}


def phase(pop: Mapping[str, Any]) -> str:
    """:data:`IDENTIFIED` or :data:`NOT_IDENTIFIED` once routed; before that
    :data:`IDENTIFYING`, or :data:`ENDED_IN_IVR` if Twilio said the call ended."""
    if pop.get("routed"):
        return IDENTIFIED if pop.get("identified") else NOT_IDENTIFIED
    return ENDED_IN_IVR if pop.get("ended") else IDENTIFYING


def label(t: Mapping[str, str], kind: str, value: Any, ended: bool = False) -> str:
    """``topic``/``reason``/``status`` value as words (unknown values shown as they are).

    A missing value reads "not yet" while the call runs and "none" once it ended.
    """
    if value is None or value == "":
        return t.get(f"{kind}_none_ended" if ended else f"{kind}_none", "–")
    return t.get(f"{kind}_{value}", str(value))


def state(t: Mapping[str, str], pop: Mapping[str, Any]) -> str:
    """Where the call is: in the IVR or routed, with Twilio's status; a call that ended in
    the IVR says only that (never "in the IVR" and "ended" together)."""
    if phase(pop) == ENDED_IN_IVR:
        return t["ended_before_agent"]
    where = t["routed"] if pop.get("routed") else t["in_ivr"]
    status = pop.get("call_status")
    return f"{where} · {label(t, 'status', status)}" if status else where


def happened(t: Mapping[str, str], pop: Mapping[str, Any]) -> str:
    """The call page's sentence on what happened: why it was routed the way it was."""
    if phase(pop) == ENDED_IN_IVR:
        return t["explain_ended"]
    reason = pop.get("reason")
    return t.get(f"explain_{reason}" if reason else "explain_none", str(reason))


def format_time(iso: Any) -> str:
    """An ISO timestamp as ``2024-05-01 10:00:00 UTC`` (the script shows local time)."""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return "–"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
