"""AuditStore against the PostgreSQL server: the same behaviour as on SQLite."""

from __future__ import annotations

import pytest

from tests.store.test_audit import AuditStoreBehaviour
from tests.store.test_pins_postgres import schema_url, server

pytestmark = pytest.mark.postgres

__all__ = ["schema_url", "server"]  # fixtures shared with the PinStore tests


class TestAuditStorePostgres(AuditStoreBehaviour):
    """The shared audit behaviour on PostgreSQL, each test in its own schema."""

    @pytest.fixture
    def db_url(self, schema_url: str) -> str:
        return schema_url
