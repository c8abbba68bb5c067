"""The Lua scripts in ``ivr/store/*.lua``, read once and sent by their SHA1.

Each script touches the keys of one hash tag only (:mod:`ivr.store.keys`), so the same
file runs on a single Redis and on a cluster node. :mod:`ivr.store.rounds` sends a
script as ``EVALSHA``; a server that does not know it yet answers NOSCRIPT and gets the
source once (``EVAL`` also caches it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class LuaScript:
    """One script: its file name (for logs), source and SHA1."""

    name: str
    source: str = field(repr=False)
    sha: str = field(repr=False)


@cache
def script(name: str) -> LuaScript:
    """The script ``ivr/store/<name>`` (read from the package once per process)."""
    source = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return LuaScript(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())  # noqa: S324 - Redis names scripts by SHA1
