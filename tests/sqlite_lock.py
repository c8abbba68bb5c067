"""Another process's hold on a test's SQLite PIN store, to make its readers wait."""

from __future__ import annotations

import sqlite3

from ivr.config import Settings


def locked(settings: Settings) -> sqlite3.Connection:
    """A connection holding the PIN store's exclusive lock (``ROLLBACK`` frees it)."""
    holder = sqlite3.connect(settings.pin_store.url.removeprefix("sqlite:///"),
                             isolation_level=None, check_same_thread=False)  # fmt: skip
    holder.execute("BEGIN EXCLUSIVE")
    return holder
