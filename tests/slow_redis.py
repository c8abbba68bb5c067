"""A Redis that answers late but surely, as one starved of CPU does: a busy script.

``DEBUG SLEEP`` would do the same, but Redis 7 refuses DEBUG by default
(``enable-debug-command``); a script that spins on ``TIME`` needs nothing enabled and
holds the server just as well: no client is answered until it ends.
"""

from __future__ import annotations

import threading
import time

import redis

# Spins for ARGV[1] microseconds.
BUSY = """
local t = redis.call('TIME')
local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop
"""
# How long after the script was sent it surely runs (it is a local round trip).
STARTED_S = 0.05


def slowed(client: redis.Redis, seconds: float) -> threading.Thread:
    """Make the server of ``client`` answer nobody for ``seconds`` from now; the returned
    thread ends when it answers again. ``client`` must wait longer than ``seconds``."""
    busy = threading.Thread(target=client.eval, args=(BUSY, 0, int(seconds * 1_000_000)))
    busy.start()
    time.sleep(STARTED_S)
    return busy
