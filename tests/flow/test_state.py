"""CallState values: copies with changes behave exactly like dataclasses.replace."""

from __future__ import annotations

import dataclasses

import pytest

from ivr.flow.actions import Reason
from ivr.flow.state import CallState

STATE = CallState("CA" + "1" * 32, "+4930111111", "de", "menu", seq=3, attempts=1)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"node": "pin", "seq": 4},
        {"identified": True, "name": "Anna", "reason": Reason.VERIFIED},
        {"customer_number": None, "caller": None},
    ],
)
def test_evolve_equals_replace(changes: dict[str, object]) -> None:
    """evolve() gives the same value as dataclasses.replace and leaves the original alone."""
    evolved = STATE.evolve(**changes)
    assert evolved == dataclasses.replace(STATE, **changes)  # type: ignore[arg-type]
    assert hash(evolved) == hash(dataclasses.replace(STATE, **changes))  # type: ignore[arg-type]
    assert STATE.node == "menu" and STATE.seq == 3


def test_evolve_rejects_unknown_fields() -> None:
    """A misspelt field is a TypeError naming it, not a silent new attribute."""
    with pytest.raises(TypeError, match="atempts"):
        STATE.evolve(atempts=2)
