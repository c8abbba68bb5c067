"""``ivr accounts import --prune`` and ``--dry-run``, and the one clean-up every deleted
account goes through (``ivr accounts delete`` too)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from ivr.cli import account_cleanup
from ivr.cli.account_cleanup import AccountCleanup
from ivr.store.link import Link
from ivr.store.pins import Account
from tests.cli.helpers import assert_one_line_error
from tests.cli.test_accounts_cli import (
    GOOD_CSV,
    SECRET_PIN,
    is_locked,
    lock_account,
    make_settings,
    open_store,
    run,
    write,
)
from tests.redis_server import free_port
from tests.store.test_account_import_changes import snapshot

THREE = GOOD_CSV + "1003,Anna Alleinig,+49 40 555555,739201\n"
# 1001 as it is, 1002 renamed; 1003 is not listed.
TRUTH = (
    "customer_number,name,phones,pin\n"
    "1001,Erika Mustermann,0151 12345678;+49 30 123456,482913\n"
    "1002,Maximilian Mustermann,,\n"
)


def imported(tmp_path: Path, redis_url: str = "") -> Path:
    """A store holding the three accounts of THREE; the settings' directory."""
    settings = make_settings(tmp_path, redis_url)
    assert run(settings, "import", str(write(tmp_path, THREE, "three.csv"))).exit_code == 0
    return tmp_path


def numbers(tmp_path: Path) -> list[str]:
    store = open_store(make_settings(tmp_path))
    try:
        return [n for n in ("1001", "1002", "1003") if store.get(n) is not None]
    finally:
        store.close()


def test_prune_deletes_the_accounts_the_file_does_not_list(tmp_path: Path) -> None:
    """With --prune the file is the full truth: listed accounts are written, the others
    (and their phones) deleted, and both counts printed."""
    settings = make_settings(imported(tmp_path))
    csv = write(tmp_path, TRUTH, "truth.csv")
    result = run(settings, "import", "--prune", str(csv))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "imported 2 accounts (0 created, 1 updated, 1 unchanged)",
        f"deleted 1 account(s) not in {csv}",
    ]
    assert numbers(tmp_path) == ["1001", "1002"]
    store = open_store(settings)
    try:
        assert store.accounts_for_phone("+4940555555") == []
        assert store.get("1002") == Account("1002", "Maximilian Mustermann")
    finally:
        store.close()


@pytest.mark.parametrize("prune", [False, True])
def test_a_dry_run_prints_the_counts_and_writes_nothing(tmp_path: Path, prune: bool) -> None:
    """--dry-run (with or without --prune) prints what would be created, updated, left
    unchanged and deleted, and leaves every stored value as it was."""
    settings = make_settings(imported(tmp_path))
    csv = write(tmp_path, TRUTH + "1004,Neu,,\n", "truth.csv")
    store = open_store(settings)
    before = snapshot(store)
    store.close()
    args = ["import", "--dry-run", *(["--prune"] if prune else []), str(csv)]
    result = run(settings, *args)
    assert result.exit_code == 0, result.output
    counts = "would create 1, update 1, leave 1 unchanged"
    deleted = (
        ", delete 1 (not in the file)"
        if prune
        else "; 1 stored account(s) not in the file (--prune would delete them)"
    )
    assert (
        result.stdout.strip() == f"dry run, nothing written: 3 accounts in {csv}: {counts}{deleted}"
    )
    store = open_store(settings)
    try:
        assert snapshot(store) == before
    finally:
        store.close()


@pytest.mark.parametrize("skip", [[], ["--skip-invalid"]])
def test_prune_refuses_a_file_with_bad_rows(tmp_path: Path, skip: list[str]) -> None:
    """A bad row makes --prune refuse, also with --skip-invalid (a skipped row's account
    must not be deleted): every bad row listed, then one line why; nothing written or
    deleted, and no PIN in the output."""
    settings = make_settings(imported(tmp_path))
    text = TRUTH.replace("482913", SECRET_PIN) + "10x3,Anna Alleinig,,739201\n1005,Bert,,123\n"
    csv = write(tmp_path, text, "bad.csv")
    store = open_store(settings)
    before = snapshot(store)
    store.close()
    result = run(settings, "import", "--prune", *skip, str(csv))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines[:2]] == [f"{csv} line 4", f"{csv} line 5"]
    assert lines[-1] == (
        f"error: {csv}: 2 bad row(s); --prune needs a file without bad rows (an account on "
        "a bad row would be deleted): nothing imported, nothing deleted"
    )
    assert SECRET_PIN not in result.output and "Traceback" not in result.output
    store = open_store(settings)
    try:
        assert snapshot(store) == before
    finally:
        store.close()


def test_prune_refuses_a_file_without_accounts(tmp_path: Path) -> None:
    """A file with a header and no rows would delete every account: --prune refuses it."""
    settings = make_settings(imported(tmp_path))
    csv = write(tmp_path, "customer_number,name\n", "empty.csv")
    assert_one_line_error(run(settings, "import", "--prune", str(csv)), "lists no accounts")
    assert numbers(tmp_path) == ["1001", "1002", "1003"]


def test_prune_clears_the_lockout_of_each_deleted_account(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, link: Link
) -> None:
    """A pruned account's lockout is cleared as ivr accounts delete clears it, and the
    output says how many were."""
    settings = make_settings(imported(tmp_path, redis_url), redis_url)
    lockout = lock_account(settings, link, "1003")
    result = run(settings, "import", "--prune", str(write(tmp_path, TRUTH, "truth.csv")))
    assert result.exit_code == 0, result.output
    assert "cleared the lockout of 1 deleted account(s)" in result.stdout
    assert not is_locked(settings, lockout, "1003")


def test_prune_and_delete_go_through_the_one_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every account that --prune or delete removes passes through
    clean_up_deleted_account once, while it still exists."""
    settings = make_settings(imported(tmp_path))
    seen: list[tuple[str, bool]] = []

    def recording(cleanup: AccountCleanup, customer_number: str) -> bool:
        store = open_store(cleanup.settings)
        try:
            seen.append((customer_number, store.get(customer_number) is not None))
        finally:
            store.close()
        return False

    monkeypatch.setattr(account_cleanup, "clean_up_deleted_account", recording)
    assert run(settings, "import", "--prune", str(write(tmp_path, TRUTH, "t.csv"))).exit_code == 0
    assert run(settings, "delete", "1002").exit_code == 0
    assert seen == [("1003", True), ("1002", True)]
    assert numbers(tmp_path) == ["1001"]


def test_a_failed_clean_up_keeps_the_account(tmp_path: Path) -> None:
    """When the lockout cannot be cleared (Redis down), prune and delete fail with one
    line and keep the account, so running them again completes the deletion."""
    settings = make_settings(imported(tmp_path), f"redis://127.0.0.1:{free_port()}/0")
    csv = write(tmp_path, TRUTH, "truth.csv")
    result = run(settings, "import", "--prune", str(csv))
    assert result.exit_code == 1
    assert result.stdout.strip() == "imported 2 accounts (0 created, 1 updated, 1 unchanged)"
    assert_one_line_error(result, "pruning stopped after deleting 0 of the 1 accounts")
    assert_one_line_error(run(settings, "delete", "1001"), "account 1001 was not deleted")
    assert numbers(tmp_path) == ["1001", "1002", "1003"]
