"""The key layout: every key the service writes is named in ivr.store.keys, with one hash
tag per script, a TTL, and nothing else in Redis."""

from __future__ import annotations

import fnmatch

import pytest
import redis
from redis.crc import key_slot

from ivr.store.keys import ANONYMOUS_CALLER, KeyLayout
from tests.conftest import ACCOUNTS, SINGLE_OWNER, UNKNOWN_NUMBER
from tests.twilio_phone import Call
from tests.web.test_round_trips import CONSOLE, Phone

KEYS = KeyLayout("ivr")


@pytest.mark.parametrize(
    "pair",
    [
        (KEYS.call("CA1"), KEYS.call_status("CA1")),
        (KEYS.account("a").fails, KEYS.account("a").lock),
        (KEYS.caller("c").fails, KEYS.caller("c").lock),
        KEYS.global_failures(28_000_000),
        KEYS.board.all(),
    ],
)
def test_keys_of_one_script_share_a_slot(pair: tuple[str, ...]) -> None:
    """The keys one script or transaction touches hash to one cluster slot."""
    assert len({key_slot(key.encode()) for key in pair}) == 1


def test_withheld_callers_share_one_subject() -> None:
    """A caller without a number is counted under the shared anonymous subject."""
    assert KEYS.caller(None) == KEYS.caller(ANONYMOUS_CALLER)


@pytest.mark.parametrize("subject", ["", "a}b", "{x}"])
def test_a_subject_that_would_move_the_tag_is_refused(subject: str) -> None:
    """Braces (or nothing) in a subject would put unrelated keys together: refused."""
    with pytest.raises(ValueError):
        KEYS.account(subject)


def test_a_prefix_that_would_break_names_is_refused() -> None:
    """A prefix with a brace or a glob character is refused before any key is named."""
    for bad in ("ivr{", "a*", "", "x" * 33):
        with pytest.raises(ValueError):
            KeyLayout(bad)


@pytest.mark.parametrize("overrides", [{"console": CONSOLE}], ids=["console on"])
def test_every_key_in_redis_is_named_by_the_layout(phone: Phone, redis_client: redis.Redis) -> None:
    """After calls that verify, fail, lock and hang up (board on), every key in the state
    Redis besides rq's matches a pattern of the layout and expires."""
    routed = phone(caller=SINGLE_OWNER)
    routed.walk("1", "000000", ACCOUNTS[0][3])
    routed.hang_up()
    for _ in range(2):
        stranger: Call = phone(caller=UNKNOWN_NUMBER)
        stranger.walk("1", f"{ACCOUNTS[1][0]}#", "000000", "000000", "000000")
    keys = [k.decode() for k in redis_client.scan_iter("*") if not k.startswith(b"rq:")]
    patterns = KEYS.patterns()
    unnamed = [k for k in keys if not any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    assert keys and unnamed == []
    assert all(redis_client.ttl(k) > 0 for k in keys)
    assert any(fnmatch.fnmatchcase(k, KEYS.account("*").lock) for k in keys)
