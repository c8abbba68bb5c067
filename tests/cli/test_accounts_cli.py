"""``ivr accounts`` import/delete/unlock through click's CliRunner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from ivr.cli.accounts import accounts
from ivr.config import LockoutSettings, PinStoreSettings, RedisSettings, Settings
from ivr.exceptions import DependencyError
from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.lockout import AttemptStatus, Lockout
from ivr.store.pins import Account, PinStore, create_engine
from tests.cli.helpers import assert_one_line_error
from tests.redis_server import free_port

PEPPER = "cli-test-pepper-0123456789"
GOOD_CSV = (
    "customer_number,name,phones,pin\n"
    "1001,Erika Mustermann,0151 12345678;+49 30 123456,482913\n"
    "1002,Max Mustermann,,582716\n"
)
SECRET_PIN = "739201"


def make_settings(tmp_path: Path, redis_url: str = "") -> Settings:
    return Settings(
        pin_store=PinStoreSettings(url=f"sqlite:///{tmp_path / 'pins.db'}", pepper=PEPPER),
        redis=RedisSettings(url=redis_url, key_prefix="ivrtest"),
        lockout=LockoutSettings(account_max_failures=2),
    )


def run(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(accounts, list(args), obj=settings)


def open_store(settings: Settings) -> PinStore:
    hasher = PinHasher.from_settings(settings.pin_store)
    return PinStore.from_url(settings.pin_store.url, hasher)


def write(tmp_path: Path, text: str, name: str = "accounts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_ok_then_reimport_changes_nothing(tmp_path: Path) -> None:
    """Importing creates the accounts; importing the same file again reports them as
    unchanged."""
    settings = make_settings(tmp_path)
    csv = write(tmp_path, GOOD_CSV)
    result = run(settings, "import", str(csv))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "imported 2 accounts (2 created, 0 updated, 0 unchanged)"
    result = run(settings, "import", str(csv))
    assert result.stdout.strip() == "imported 2 accounts (0 created, 0 updated, 2 unchanged)"
    store = open_store(settings)
    try:
        assert store.check_pin("1001", "482913") == Account("1001", "Erika Mustermann")
        assert store.accounts_for_phone("+4930123456") == ["1001"]
    finally:
        store.close()


def test_import_bad_row_writes_nothing(tmp_path: Path) -> None:
    """A bad row exits 1 with one stderr line naming file and line, and writes nothing."""
    settings = make_settings(tmp_path)
    text = GOOD_CSV + "\n" + "1003,Anna,,123\n" + f"1004,Bert,,{SECRET_PIN}\n"
    csv = write(tmp_path, text.replace("582716", SECRET_PIN))
    result = run(settings, "import", str(csv))
    assert_one_line_error(result, f"{csv} line 5:", "pin")
    assert SECRET_PIN not in result.output
    assert "123" not in result.stderr.split("line 5:")[1]  # nor the bad PIN itself
    assert not (tmp_path / "pins.db").exists()  # validation fails before the DB is opened
    store = open_store(settings)
    try:
        assert store.count() == 0
    finally:
        store.close()


def test_import_refuses_a_weak_pin(tmp_path: Path) -> None:
    """A weak PIN (here a run, 123456) fails the import with its line and the rule's
    name, and without the PIN; nothing is written."""
    settings = make_settings(tmp_path)
    csv = write(tmp_path, GOOD_CSV + "1003,Anna,,123456\n")
    result = run(settings, "import", str(csv))
    assert_one_line_error(result, f"{csv} line 4:", "rule: sequence")
    assert "123456" not in result.stderr
    assert not (tmp_path / "pins.db").exists()


def test_import_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is a one-line error, not a usage dump."""
    result = run(make_settings(tmp_path), "import", str(tmp_path / "nope.csv"))
    assert_one_line_error(result, "nope.csv")


def test_import_unreachable_store(tmp_path: Path) -> None:
    """A PIN store that cannot be reached is a one-line error with exit status 1."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    settings = Settings(pin_store=PinStoreSettings(url=url, pepper=PEPPER))
    result = run(settings, "import", str(write(tmp_path, GOOD_CSV)))
    assert_one_line_error(result, "PIN store")


def test_delete(tmp_path: Path) -> None:
    """delete removes an existing account; deleting it again is an error with exit 1."""
    settings = make_settings(tmp_path)
    run(settings, "import", str(write(tmp_path, GOOD_CSV)))
    result = run(settings, "delete", "1001")
    assert result.exit_code == 0, result.output
    assert "deleted account 1001" in result.stdout
    assert_one_line_error(run(settings, "delete", "1001"), "1001")
    store = open_store(settings)
    try:
        assert store.get("1001") is None and store.count() == 1
    finally:
        store.close()


def test_delete_unknown(tmp_path: Path) -> None:
    """Deleting an unknown customer number fails with one line and exit status 1."""
    assert_one_line_error(run(make_settings(tmp_path), "delete", "9999"), "9999")


def test_unlock_without_redis(tmp_path: Path) -> None:
    """unlock without a configured Redis says so on one line and exits 1."""
    assert_one_line_error(run(make_settings(tmp_path), "unlock", "1001"), "[redis] url")


def test_unlock_unreachable_redis(tmp_path: Path) -> None:
    """unlock with a Redis that does not answer fails on one line with exit 1."""
    settings = make_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    assert_one_line_error(run(settings, "unlock", "1001"), "redis")


def lock_account(settings: Settings, link: Link, number: str) -> Lockout:
    """Fail PIN entry on ``number`` until it is locked; return the Lockout used."""
    hasher = PinHasher.from_settings(settings.pin_store)
    lockout = Lockout(link, KeyLayout(settings.redis.key_prefix), settings.lockout)
    subject = hasher.subject("account", number)
    for _ in range(settings.lockout.account_max_failures):
        assert lockout.begin(subject, None).allowed
    assert lockout.begin(subject, None).status is AttemptStatus.ACCOUNT_LOCKED
    return lockout


def is_locked(settings: Settings, lockout: Lockout, number: str) -> bool:
    hasher = PinHasher.from_settings(settings.pin_store)
    return lockout.account_lock_ttl(hasher.subject("account", number)) > 0


def test_unlock_lifts_the_lockout(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """unlock lifts a real lockout in Redis so the account may enter its PIN again."""
    settings = make_settings(tmp_path, redis_url)
    lockout = lock_account(settings, link, "1001")
    assert is_locked(settings, lockout, "1001")
    result = run(settings, "unlock", "1001")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "unlocked account 1001"
    assert not is_locked(settings, lockout, "1001")
    again = run(settings, "unlock", "1001")
    assert again.exit_code == 0 and "no lockout" in again.stdout


def test_unlock_is_audited(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """Every CLI unlock leaves an audit row naming the operator and the source."""
    settings = make_settings(tmp_path, redis_url)
    lock_account(settings, link, "1001")
    assert run(settings, "unlock", "1001").exit_code == 0
    audit = AuditStore(create_engine(settings.pin_store.url, 1.0))
    rows = list(audit.export(datetime.now(UTC) - timedelta(minutes=5)))
    audit.close()
    assert [(r.customer_number, r.source) for r in rows] == [("1001", "cli")]
    assert rows[0].actor


def test_no_unlock_without_audit(
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis,
    link: Link,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the unlock cannot be audited the account stays locked and the error is one line."""
    settings = make_settings(tmp_path, redis_url)
    lockout = lock_account(settings, link, "1001")

    def broken(*args: object, **kwargs: object) -> None:
        raise DependencyError("audit store failed: disk I/O error")

    monkeypatch.setattr(AuditStore, "record_unlock", broken)
    assert_one_line_error(run(settings, "unlock", "1001"), "audit store failed")
    assert is_locked(settings, lockout, "1001")


def test_redis_never_sees_the_customer_number(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """Lockout keys carry the keyed subject, never the customer number in clear."""
    settings = make_settings(tmp_path, redis_url)
    lock_account(settings, link, "4711")
    keys = [k.decode() if isinstance(k, bytes) else k for k in redis_client.keys("*")]
    assert keys and not any("4711" in key for key in keys)


def test_delete_clears_the_lockout(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """Deleting an account also lifts its lockout."""
    settings = make_settings(tmp_path, redis_url)
    run(settings, "import", str(write(tmp_path, GOOD_CSV)))
    lockout = lock_account(settings, link, "1001")
    result = run(settings, "delete", "1001")
    assert result.exit_code == 0, result.output
    assert "cleared the lockout of account 1001" in result.stdout
    assert not is_locked(settings, lockout, "1001")


@pytest.mark.parametrize("with_redis", [True, False])
def test_delete_pseudonymises_the_audit_trail(
    tmp_path: Path, redis_url: str, with_redis: bool
) -> None:
    """After delete, the account's audit rows keep their outcome but name neither its
    customer number nor its phone (also without Redis), as the API's DELETE does."""
    settings = make_settings(tmp_path, redis_url if with_redis else "")
    run(settings, "import", str(write(tmp_path, GOOD_CSV)))
    store = open_store(settings)
    try:
        phone = "+4915112345678"  # the file's first phone of 1001
        audit = AuditStore.on(store.engine)
        audit.record_attempt("CA" + "1" * 32, "1001", phone, "wrong", datetime.now(UTC))
        assert run(settings, "delete", "1001").exit_code == 0
        (row,) = audit.export(datetime.now(UTC) - timedelta(hours=1))
    finally:
        store.close()
    assert row.outcome == "wrong"
    assert row.customer_number.startswith("erased:") and "1001" not in row.customer_number
    assert row.caller is not None and row.caller.startswith("erased:")


def test_a_new_pin_lifts_the_lockout(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """set-pin on a locked account lifts its lockout (as the provisioning API does)."""
    settings = make_settings(tmp_path, redis_url)
    run(settings, "import", str(write(tmp_path, GOOD_CSV)))
    lockout = lock_account(settings, link, "1001")
    result = CliRunner().invoke(accounts, ["set-pin", "1001", "--stdin"], obj=settings,
                                input="402917\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lifted the lockout of account 1001" in result.stdout
    assert not is_locked(settings, lockout, "1001")
