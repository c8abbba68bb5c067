"""An account change as the provisioning API receives it: parsed and checked, no I/O.

The customer system sends JSON objects with any of ``name``, ``phones`` and ``pin``.
:func:`parse_change` turns one into an :class:`AccountChange` or a list of
:class:`FieldProblem` (one per bad field, never quoting a PIN). The same rules as the
import (:mod:`ivr.store.accounts_csv`) and the PIN policy (:mod:`ivr.pin_policy`) apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr import phone
from ivr.pin_policy import PinPolicy
from ivr.store.accounts_csv import CUSTOMER_NUMBER, MAX_NAME_CHARS

FIELDS = ("name", "phones", "pin")
# More numbers than any household has: a bound on what one request may write.
MAX_PHONES = 20


@dataclass(frozen=True)
class AccountChange:
    """What to change; None leaves a field as it is."""

    name: str | None = None
    phones: tuple[str, ...] | None = None
    pin: str | None = None


@dataclass(frozen=True)
class FieldProblem:
    """Why one field was refused (``rule`` names a PIN policy rule where one applies)."""

    field: str
    detail: str


def customer_number_problem(number: str) -> FieldProblem | None:
    """Why ``number`` is no customer number, or None."""
    if CUSTOMER_NUMBER.fullmatch(number):
        return None
    return FieldProblem("customer_number", "must be 1 to 12 digits (0-9)")


def parse_change(
    body: Any, policy: PinPolicy, region: str, *, complete: bool
) -> AccountChange | list[FieldProblem]:
    """``body`` (parsed JSON) as a change; ``complete`` (PUT) requires ``name``."""
    if not isinstance(body, dict):
        return [FieldProblem("", "the body must be a JSON object")]
    problems = [FieldProblem(key, "unknown field") for key in body if key not in FIELDS]
    if complete and "name" not in body:
        problems.append(FieldProblem("name", "is required"))
    name = _name(body.get("name"), problems) if "name" in body else None
    phones = _phones(body.get("phones"), region, problems) if "phones" in body else None
    pin = pin_of(body.get("pin"), policy, problems) if "pin" in body else None
    if problems:
        return problems
    return AccountChange(name, phones, pin)


def pin_of(value: Any, policy: PinPolicy, problems: list[FieldProblem]) -> str | None:
    """``value`` as a PIN the policy accepts; else None and a problem naming the rule."""
    if not isinstance(value, str):
        problems.append(FieldProblem("pin", f"must be a string of {policy.length} digits"))
        return None
    weak = policy.problem(value)
    if weak is not None:
        problems.append(FieldProblem("pin", weak))
        return None
    return value


def _name(value: Any, problems: list[FieldProblem]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldProblem("name", "must be a non-empty string"))
        return None
    if len(value) > MAX_NAME_CHARS:
        problems.append(FieldProblem("name", f"is longer than {MAX_NAME_CHARS} characters"))
        return None
    return value.strip()


def _phones(value: Any, region: str, problems: list[FieldProblem]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_PHONES:
        problems.append(FieldProblem("phones", f"must be a list of at most {MAX_PHONES} "
                                               "phone numbers"))  # fmt: skip
        return None
    found: list[str] = []
    for position, raw in enumerate(value):
        e164 = phone.normalize(raw, region) if isinstance(raw, str) else None
        if e164 is None:
            problems.append(FieldProblem(f"phones/{position}", "is not a valid phone number"))
        elif e164 not in found:
            found.append(e164)
    return tuple(found)
