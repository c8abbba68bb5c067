"""What ``ivr accounts unlock``/``delete`` and ``ivr callers unlock`` need: the PIN
store, the audit trail and the lockout, opened together and closed together."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ivr.config import Settings
from ivr.exceptions import ConfigError
from ivr.store.audit import AuditStore
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from ivr.store.lockout import Lockout
from ivr.store.pins import PinStore
from ivr.store.redis_client import open_link
from ivr.unlock import SOURCE_CLI, Unlocker


@dataclass(frozen=True)
class LockoutTools:
    """Open stores for one unlock command, and the operator's unlocker over them."""

    store: PinStore
    unlocker: Unlocker


def open_store(settings: Settings, hasher: PinHasher | None = None) -> PinStore:
    """The PIN store of ``settings``, its tables created."""
    hasher = hasher or PinHasher.from_settings(settings.pin_store)
    return PinStore.from_url(settings.pin_store.url, hasher, settings.pin_store.timeout_s)


@contextmanager
def lockout_tools(settings: Settings) -> Iterator[LockoutTools]:
    """The stores an unlock needs; ConfigError when no Redis is configured."""
    if not settings.redis.url:
        raise ConfigError("[redis] url is not set; lockouts live in Redis, nothing to unlock")
    hasher = PinHasher.from_settings(settings.pin_store)
    store = open_store(settings, hasher)
    try:
        audit = AuditStore.on(store.engine)
        link = open_link(settings.redis)  # lazy: Redis is first used after the audit row
        try:
            lockout = Lockout(link, KeyLayout(settings.redis.key_prefix), settings.lockout)
            yield LockoutTools(store, Unlocker(operator(), SOURCE_CLI, audit, lockout, hasher))
        finally:
            link.close()
    finally:
        store.close()


def operator() -> str:
    """Who runs the command, for the audit trail."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"
