"""``ivr callers unlock`` and the phone blocks lifted by ``ivr accounts unlock``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from click.testing import CliRunner, Result

from ivr.cli.callers import callers
from ivr.config import Settings
from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import AttemptStatus, Lockout
from ivr.store.pins import create_engine
from tests.cli.helpers import assert_one_line_error
from tests.cli.test_accounts_cli import GOOD_CSV, make_settings, run, write

ERIKA_LANDLINE = "+4930123456"  # a phone of account 1001 in GOOD_CSV


def run_callers(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(callers, list(args), obj=settings)


def block(settings: Settings, link: Link, e164: str | None) -> Lockout:
    """Fail PIN entry from ``e164`` (None: withheld) on many accounts until it is blocked."""
    hasher = PinHasher.from_settings(settings.pin_store)
    lockout = Lockout(link, KeyLayout(settings.redis.key_prefix), settings.lockout)
    caller = hasher.subject("caller", e164) if e164 else None
    limits = settings.lockout
    for i in range(limits.caller_max_failures if e164 else limits.withheld_max_failures):
        assert lockout.begin(hasher.subject("account", f"9{i}"), caller).allowed
    assert not allowed(settings, lockout, e164)
    return lockout


def allowed(settings: Settings, lockout: Lockout, e164: str | None) -> bool:
    """Whether a new PIN entry from ``e164`` on a fresh account gets past the caller block."""
    hasher = PinHasher.from_settings(settings.pin_store)
    caller = hasher.subject("caller", e164) if e164 else None
    status = lockout.begin(hasher.subject("account", "777"), caller).status
    return status is not AttemptStatus.CALLER_LOCKED


def test_callers_unlock_lifts_the_block_and_is_audited(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """A blocked caller number, written in national format, is unblocked and the unlock
    is audited with the number as caller and no customer number."""
    settings = make_settings(tmp_path, redis_url)
    lockout = block(settings, link, ERIKA_LANDLINE)
    result = run_callers(settings, "unlock", "030 123456")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"unlocked caller {ERIKA_LANDLINE}"
    assert allowed(settings, lockout, ERIKA_LANDLINE)
    audit = AuditStore(create_engine(settings.pin_store.url, 1.0))
    try:
        rows = list(audit.export(datetime.now(UTC) - timedelta(minutes=5)))
    finally:
        audit.close()
    assert [(r.kind, r.customer_number, r.caller) for r in rows] == [("unlock", "", ERIKA_LANDLINE)]


def test_withheld_names_the_shared_bucket(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """'withheld' lifts the block of the withheld numbers' shared bucket."""
    settings = make_settings(tmp_path, redis_url)
    lockout = block(settings, link, None)
    result = run_callers(settings, "unlock", "withheld")
    assert result.exit_code == 0 and "withheld numbers" in result.stdout
    assert allowed(settings, lockout, None)


def test_not_a_phone_number(tmp_path: Path, redis_url: str) -> None:
    """Something that is not a phone number is a one-line error."""
    assert_one_line_error(run_callers(make_settings(tmp_path, redis_url), "unlock", "12"),
                          "not a valid phone number")  # fmt: skip


def test_account_unlock_also_lifts_its_phones_blocks(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """accounts unlock lifts the block of the account's own phone numbers (the holder
    could not enter even the right PIN from it) and says which."""
    settings = make_settings(tmp_path, redis_url)
    assert run(settings, "import", str(write(tmp_path, GOOD_CSV))).exit_code == 0
    lockout = block(settings, link, ERIKA_LANDLINE)
    result = run(settings, "unlock", "1001")
    assert result.exit_code == 0, result.output
    assert f"unlocked caller {ERIKA_LANDLINE} (a phone of the account)" in result.stdout
    assert allowed(settings, lockout, ERIKA_LANDLINE)
