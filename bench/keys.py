"""Every Redis key left after the run, grouped by pattern, with its TTL (none may lack one)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

BATCH = 1_000
# Ids inside keys (CallSids, keyed-hash subjects, job ids, minute numbers) become '*'.
_ID = re.compile(r"(?:CA|AC|audit-|crm-|sms-)?[0-9a-fA-F][0-9a-fA-F-]{7,}")


def pattern(key: str) -> str:
    """``key`` with its ids replaced by ``*``: ``ivr:call:{CA…}`` -> ``ivr:call:{*}``."""
    return _ID.sub("*", key)


@dataclass
class KeyGroup:
    """Keys of one pattern and their TTLs in seconds."""

    pattern: str
    keys: int = 0
    without_ttl: int = 0
    min_ttl: int | None = None
    max_ttl: int | None = None

    def add(self, ttl: int) -> None:
        self.keys += 1
        if ttl < 0:
            self.without_ttl += 1
            return
        self.min_ttl = ttl if self.min_ttl is None else min(self.min_ttl, ttl)
        self.max_ttl = ttl if self.max_ttl is None else max(self.max_ttl, ttl)


def audit(client: redis.Redis, label: str) -> list[KeyGroup]:
    """Group every key of ``client``'s database by pattern, with TTL range and misses."""
    groups: dict[str, KeyGroup] = {}
    batch: list[bytes] = []

    def flush() -> None:
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.ttl(key)
            ttls = pipe.execute()
        for key, ttl in zip(batch, ttls, strict=True):
            if ttl == -2:  # expired between SCAN and TTL
                continue
            name = f"{label}{pattern(key.decode('utf-8', 'replace'))}"
            groups.setdefault(name, KeyGroup(name)).add(int(ttl))
        batch.clear()

    for key in client.scan_iter(count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return sorted(groups.values(), key=lambda g: g.pattern)
