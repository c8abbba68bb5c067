"""Every PIN attempt is audited with its outcome, including one routed unavailable, and
also when the audit journal in Redis cannot take it (issue 11, item 7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis

from ivr.services import Services
from ivr.store.audit import AuditStore
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.twilio_phone import Call, parse_task

Phone = Callable[..., Call]
ANNA_NUMBER, ANNA_PIN = ACCOUNTS[0][0], ACCOUNTS[0][3]


def journalled(services: Services) -> list[str]:
    """The outcomes waiting in the audit journal."""
    return [entry.outcome for entry in services.journal.read("test-reader", 100)]


def test_an_attempt_that_could_not_be_counted_is_audited_unavailable(
    phone: Phone, services: Services, redis_client: redis.Redis
) -> None:
    """When the lockout count fails (here the account's counter is broken), the caller is
    routed unavailable and the attempt is journalled with outcome unavailable."""
    subject = services.hasher.subject("account", ANNA_NUMBER)
    redis_client.set(services.keys.account(subject).fails, "not a number")
    task = parse_task(phone(caller=SINGLE_OWNER).walk("1", ANNA_PIN))
    assert (task["identified"], task["reason"]) == (False, "unavailable")
    assert journalled(services) == ["unavailable"]


def test_an_attempt_the_journal_refuses_goes_to_sql_directly(
    phone: Phone, services: Services, redis_client: redis.Redis
) -> None:
    """If the journal cannot take the entry (here its key holds the wrong type), the call
    goes on and the attempt is written to the SQL audit trail at once, exactly once."""
    redis_client.set(services.keys.audit_journal, "not a stream")
    task = parse_task(phone(caller=SINGLE_OWNER).walk("1", "000000", ANNA_PIN))
    assert task["identified"] is True
    rows = list(AuditStore(services.pins.engine).export(datetime.now(UTC) - timedelta(hours=1)))
    assert [(r.customer_number, r.outcome) for r in rows] == [
        (ANNA_NUMBER, "wrong"), (ANNA_NUMBER, "verified"),
    ]  # fmt: skip
