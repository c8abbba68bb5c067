"""Weak Service-PINs are refused by rule; the message names the rule, never the PIN."""

from __future__ import annotations

import pytest

from ivr.pin_policy import PinPolicy, Rule, parse_rules

SIX = PinPolicy(6)
FOUR = PinPolicy(4)


@pytest.mark.parametrize(
    ("policy", "pin", "refused_by"),
    [
        (SIX, "000000", "same"),
        (SIX, "777777", "same"),
        (SIX, "123456", "sequence"),
        (SIX, "654321", "sequence"),
        (SIX, "890123", "sequence"),
        (SIX, "210987", "sequence"),
        (SIX, "121212", "repeat"),
        (SIX, "123123", "repeat"),
        (SIX, "112112", "repeat"),
        (SIX, "147258", "common"),
        (SIX, "159753", "common"),
        (SIX, "112233", "common"),
        (SIX, "123321", "common"),
        (FOUR, "1234", "sequence"),
        (FOUR, "1212", "repeat"),
        (FOUR, "1987", "common"),
        (FOUR, "2580", "common"),
        (SIX, "12345", "digits"),
        (SIX, "12a456", "digits"),
        (SIX, "１２３４５６", "digits"),  # fullwidth digits are not keypad digits
        (SIX, "739201", None),
        (SIX, "246813", None),
        (SIX, "902184", None),
        (FOUR, "8402", None),
        (FOUR, "2101", None),
    ],
)
def test_rules(policy: PinPolicy, pin: str, refused_by: str | None) -> None:
    """Each weak PIN is refused by the rule named in its message; a good one passes."""
    problem = policy.problem(pin)
    if refused_by is None:
        assert problem is None
    elif refused_by == "digits":
        assert problem == f"pin must be exactly {policy.length} digits"
    else:
        assert problem is not None and f"(rule: {refused_by})" in problem
    assert problem is None or pin not in problem


def test_rules_can_be_turned_off_and_values_added() -> None:
    """Without the sequence rule 123456 passes; a blocklisted value is refused."""
    policy = PinPolicy(6, rules=frozenset(Rule) - {Rule.SEQUENCE}, blocklist=frozenset({"739201"}))
    assert policy.problem("123456") is None
    assert policy.problem("739201") == "pin is on this service's blocklist ([pin] blocklist)"


def test_unknown_rule_names_are_reported() -> None:
    """parse_rules names the unknown rule and the known ones."""
    assert parse_rules(("same", "sequence")) == frozenset({Rule.SAME, Rule.SEQUENCE})
    error = parse_rules(("same", "dates"))
    assert isinstance(error, str) and "'dates'" in error and "common" in error
