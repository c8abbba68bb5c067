"""A Sentinel primary passed over by a failover, back while it still believes it is the
primary, loses none of the fleet's calls or failure counts.

Bound proven: the primary is frozen until a replica is promoted, then thawed: it answers
again as a primary, with its data and the web nodes' pooled connections to it, until the
sentinels convert it to a replica about 10 s later (which throws its data away). Every web
process asks the sentinels who the primary is at least every PRIMARY_RECHECK_S, so from
1 s after the thaw nothing is written there: a call begun then finishes identified after
the conversion, and failures counted then still lock the account.
"""

from __future__ import annotations

import time
from functools import partial

import pytest

from tests.conftest import UNKNOWN_NUMBER
from tests.fleet.calls import alternating, follow, outcome, settle
from tests.fleet.fleet import CUSTOMERS, SENTINEL, Fleet
from tests.measured import report
from tests.racing import race

AFTER_THAW_S = 1.0
CONVERTED_WITHIN_S = 40.0
WRONG_PIN = "000000"
pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("fleet", [SENTINEL], indirect=True)
def test_a_passed_over_primary_loses_no_call_and_no_count(fleet: Fleet) -> None:
    """Calls and failure counts made from 1 s after a passed-over primary came back are
    kept once the sentinels have converted it: the call is identified, the fifth
    failure locks the account."""
    assert fleet.sentinel is not None
    settle(fleet)
    # Parallel calls leave every web process with idle pooled connections to the primary.
    race([partial(follow, fleet.phone(UNKNOWN_NUMBER, pick=alternating(i)), "0")
          for i in range(16)])  # fmt: skip
    former = fleet.sentinel.pass_over()
    thawed = time.monotonic()
    assert former.role() == "master"
    time.sleep(AFTER_THAW_S)
    waiting, locking = CUSTOMERS[6], CUSTOMERS[7]
    call = fleet.phone(waiting.phone)
    assert follow(call, "1").gather is not None  # asked for the PIN; finished below
    typed = (f"{locking.number}#",)
    first = follow(fleet.phone("+4930910001"), "1", *typed, WRONG_PIN, WRONG_PIN, WRONG_PIN)
    assert outcome(first) == (False, "wrong_pin")
    assert follow(fleet.phone("+4930910002"), "1", *typed, WRONG_PIN).gather is not None
    fleet.sentinel.wait_healthy(CONVERTED_WITHIN_S)  # the former primary is a replica now
    report(f"[{fleet.topology}] passed-over primary converted "
           f"{time.monotonic() - thawed:.1f} s after it came back")  # fmt: skip
    assert former.role() == "slave"
    assert outcome(call.press(waiting.pin)) == (True, "verified"), fleet.logs()
    last = fleet.phone("+4930910003")
    assert follow(last, "1", *typed, WRONG_PIN).gather is not None  # the fifth: locks
    assert outcome(last.press(locking.pin)) == (False, "locked")
