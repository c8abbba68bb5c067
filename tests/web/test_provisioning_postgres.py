"""The provisioning API on a PostgreSQL PIN store: the same behaviour as on SQLite, and
of racing edits still exactly one wins (there by row locks and the version check)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fleet.postgres import postgres_database
from tests.web.test_provisioning import (
    TOKEN,
    test_a_generated_pin_is_returned_once_and_works,
    test_delete_erases_the_account_its_lockout_and_its_audit_identity,
    test_edits_waiting_behind_another_writer_see_its_version,
    test_of_racing_edits_with_one_version_exactly_one_wins,
    test_patch_changes_only_the_fields_given,
    test_put_creates_then_changes_nothing_when_repeated,
    test_put_replaces_phones_but_keeps_the_pin,
    test_versions_guard_concurrent_edits,
)

__all__ = [
    "test_a_generated_pin_is_returned_once_and_works",
    "test_delete_erases_the_account_its_lockout_and_its_audit_identity",
    "test_edits_waiting_behind_another_writer_see_its_version",
    "test_of_racing_edits_with_one_version_exactly_one_wins",
    "test_patch_changes_only_the_fields_given",
    "test_put_creates_then_changes_nothing_when_repeated",
    "test_put_replaces_phones_but_keeps_the_pin",
    "test_versions_guard_concurrent_edits",
]

pytestmark = pytest.mark.postgres


@pytest.fixture
def overrides() -> Iterator[dict[str, dict[str, Any]]]:
    """The provisioning API on, the PIN store in a fresh PostgreSQL database."""
    with postgres_database() as url:
        yield {"api": {"provisioning_token": TOKEN}, "pin_store": {"url": url}}
