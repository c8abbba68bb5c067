"""Which Service-PINs are too weak to set (pure: no I/O, no settings object).

NIST SP 800-63B (5.1.1.2) asks verifiers to refuse values that are commonly used,
expected or compromised. For numeric PINs the studies of leaked and surveyed PINs
(Bonneau et al. 2012, "A birthday present every eleven wallets?"; DataGenetics 2012;
Wang et al. 2017 on 6-digit PINs) agree on what attackers try first, and so on what a
lockout that allows 5 guesses must not let through:

- ``same``: one digit repeated (``000000``, ``777777``);
- ``sequence``: a run up or down by one, also across 9→0 (``123456``, ``654321``,
  ``890123``);
- ``repeat``: a shorter group repeated (``121212``, ``123123``, ``112112``);
- ``common``: the most used values that the rules above miss — keypad shapes
  (``147258``, ``159753``, ``852963``), mirrored and paired groups (``123321``,
  ``112233``), and for 4-digit PINs every year 1900–2099 (birth years lead every list).

An operator may turn rules off and add values of their own (``[pin] rules``,
``[pin] blocklist``). Messages name the rule, never the PIN.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Rule(str, Enum):
    """A reason to refuse a PIN; the value is its name in ``[pin] rules``."""

    SAME = "same"
    SEQUENCE = "sequence"
    REPEAT = "repeat"
    COMMON = "common"


# Frequent values that none of the shape rules catches (the lists cited above).
_COMMON = frozenset({
    # 4 digits
    "1004", "1122", "1313", "1342", "2580", "0852", "1470", "1478", "1357", "2468",
    "1590", "7410", "9630", "1397", "3698",
    # 6 digits
    "112233", "123321", "147258", "147852", "159357", "159753", "258369", "258456",
    "321654", "456123", "520520", "741852", "753951", "789456", "852963", "963852",
    "101010", "110110", "123654", "147369", "159951", "246802", "369258", "696969",
    "131313", "142536", "198412",
})  # fmt: skip
_YEARS = frozenset(str(year) for year in range(1900, 2100))

MESSAGES = {
    Rule.SAME: "pin is one digit repeated (rule: same)",
    Rule.SEQUENCE: "pin is a run of digits up or down (rule: sequence)",
    Rule.REPEAT: "pin repeats a shorter group of digits (rule: repeat)",
    Rule.COMMON: "pin is one of the most commonly used PINs (rule: common)",
}


def _same(pin: str) -> bool:
    return len(set(pin)) == 1


def _sequence(pin: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    return steps in ({1}, {9})


def _repeat(pin: str) -> bool:
    size = len(pin)
    return any(size % period == 0 and pin == pin[:period] * (size // period)
               for period in range(1, size // 2 + 1))  # fmt: skip


def _common(pin: str) -> bool:
    return pin in _COMMON or (len(pin) == 4 and pin in _YEARS)


_CHECKS = {Rule.SAME: _same, Rule.SEQUENCE: _sequence, Rule.REPEAT: _repeat, Rule.COMMON: _common}


@dataclass(frozen=True)
class PinPolicy:
    """The PINs that may be set: ``length`` digits, passing every rule in ``rules``, and
    not in ``blocklist``."""

    length: int
    rules: frozenset[Rule] = frozenset(Rule)
    blocklist: frozenset[str] = frozenset()

    def problem(self, pin: str) -> str | None:
        """Why ``pin`` may not be set (a message naming the rule, never the PIN), or None."""
        if len(pin) != self.length or not pin.isascii() or not pin.isdigit():
            return f"pin must be exactly {self.length} digits"
        for rule in Rule:  # in a fixed order: the same PIN always gets the same message
            if rule in self.rules and _CHECKS[rule](pin):
                return MESSAGES[rule]
        if pin in self.blocklist:
            return "pin is on this service's blocklist ([pin] blocklist)"
        return None


def parse_rules(names: tuple[str, ...]) -> frozenset[Rule] | str:
    """The rules named in ``[pin] rules``, or the error naming the unknown one."""
    known = {rule.value: rule for rule in Rule}
    for name in names:
        if name not in known:
            return f"[pin] rules: unknown rule {name!r}; choose from {', '.join(known)}"
    return frozenset(known[name] for name in names)


def generate(policy: PinPolicy, below: Callable[[int], int] = secrets.randbelow) -> str:
    """A random PIN that ``policy`` accepts (``below(n)``: a uniform integer < n, from
    the ``secrets`` module unless a test gives its own)."""
    while True:
        pin = f"{below(10**policy.length):0{policy.length}d}"
        if policy.problem(pin) is None:
            return pin
