"""Accounts as the customer system changes them: the provisioning API's core.

:class:`AccountService` checks what it is given (:mod:`ivr.account_fields`, the PIN
policy) and carries it out on the stores (:mod:`ivr.store.account_admin`,
:mod:`ivr.erasure`); the web layer only maps requests and answers. Its errors:
:class:`Invalid` (the fields' problems), AccountNotFound, VersionMismatch and
DependencyError (a store did not answer; every operation may simply be sent again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.account_fields import (
    AccountChange,
    FieldProblem,
    customer_number_problem,
    parse_change,
    pin_of,
)
from ivr.erasure import Eraser
from ivr.exceptions import IVRError
from ivr.pin_policy import PinPolicy, generate
from ivr.store.account_admin import ANY_VERSION, AccountAdmin, AccountDetails, Expect
from ivr.unlock import Unlocker

# Who changed an account, as the audit trail records a PIN reset's unlock.
ACTOR = "provisioning-api"
SOURCE_API = "api"


class Invalid(IVRError):
    """A request's fields were refused; ``problems`` names each (never a PIN)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.detail}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class AccountService:
    """Create, change, show and erase accounts; set and generate their PINs."""

    admin: AccountAdmin
    eraser: Eraser
    unlocker: Unlocker
    policy: PinPolicy
    region: str

    def show(self, customer_number: str) -> AccountDetails:
        """The account, without PIN material; AccountNotFound if there is none."""
        _check_number(customer_number)
        return self.admin.details(customer_number)

    def put(
        self, customer_number: str, body: Any, expect: Expect = ANY_VERSION
    ) -> tuple[AccountDetails, bool]:
        """Create or replace the account from ``body``; and whether it was created.
        Phones not given become none; a PIN not given is kept."""
        change = self._change(customer_number, body, complete=True)
        details, created = self.admin.write(customer_number, change, create=True, replace=True,
                                            expect=expect)  # fmt: skip
        if not created:
            self._pin_changed(customer_number, change)
        return details, created

    def patch(
        self, customer_number: str, body: Any, expect: Expect = ANY_VERSION
    ) -> AccountDetails:
        """Change only the fields ``body`` gives; AccountNotFound if there is none."""
        change = self._change(customer_number, body, complete=False)
        details, _ = self.admin.write(customer_number, change, create=False, replace=False,
                                      expect=expect)  # fmt: skip
        self._pin_changed(customer_number, change)
        return details

    def set_pin(
        self, customer_number: str, body: Any, expect: Expect = ANY_VERSION
    ) -> tuple[AccountDetails, str | None]:
        """``{"generate": true}`` sets a random PIN and returns it (the only time it is
        seen); ``{"pin": "…"}`` sets that one. A new PIN lifts the account's lockout."""
        _check_number(customer_number)
        pin, generated = self._pin_request(body)
        details = self.admin.set_pin(customer_number, pin, expect)
        self._pin_changed(customer_number, AccountChange(pin=pin))
        return details, pin if generated else None

    def erase(self, customer_number: str, expect: Expect = ANY_VERSION) -> bool:
        """Erase the account and its traces (:mod:`ivr.erasure`); False if there was none."""
        _check_number(customer_number)
        return self.eraser.erase(customer_number, expect)

    def _change(self, customer_number: str, body: Any, *, complete: bool) -> AccountChange:
        number = customer_number_problem(customer_number)
        problems = [] if number is None else [number]  # reported with the fields' problems
        parsed = parse_change(body, self.policy, self.region, complete=complete)
        if isinstance(parsed, list):
            raise Invalid(problems + parsed)
        if problems:
            raise Invalid(problems)
        return parsed

    def _pin_request(self, body: Any) -> tuple[str, bool]:
        if not isinstance(body, dict) or set(body) not in ({"generate"}, {"pin"}):
            raise Invalid([FieldProblem("", 'give either "generate": true or "pin"')])
        if "generate" in body:
            if body["generate"] is not True:
                raise Invalid([FieldProblem("generate", "must be true")])
            return generate(self.policy), True
        problems: list[FieldProblem] = []
        pin = pin_of(body["pin"], self.policy, problems)
        if pin is None:
            raise Invalid(problems)
        return pin, False

    def _pin_changed(self, customer_number: str, change: AccountChange) -> None:
        """A PIN the customer just set (in the portal) ends the account's lockout: the
        guesses counted were against the old one."""
        if change.pin is not None:
            self.unlocker.account(customer_number)


def _check_number(customer_number: str) -> None:
    problem = customer_number_problem(customer_number)
    if problem is not None:
        raise Invalid([problem])
