"""Free loopback ports for the fleet's servers, never handed out twice per process."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

# Cluster bus ports are port + 10000 and must stay below 65536 (hence below 55535).
LOW, HIGH = 20000, 45000
BUS_OFFSET = 10000

_given: set[int] = set()
_lock = threading.Lock()


def _ephemeral_low() -> int:
    """First port of the kernel's ephemeral range (outgoing connections take these)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _candidates(bus: bool) -> range:
    # Staying below the ephemeral range means a client socket cannot grab the port
    # between our check and the server's bind; fall back to the wide range if too small.
    top = _ephemeral_low() - 1 - (BUS_OFFSET if bus else 0)
    if top - LOW >= 1000:
        return range(LOW, min(top, HIGH) + 1)
    return range(LOW, HIGH + 1)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus: bool = False) -> int:
    """A free TCP port on 127.0.0.1 below 55535; with ``bus``, port + 10000 is free too."""
    candidates = _candidates(bus)
    with _lock:
        for _ in range(1000):
            port = random.choice(candidates)
            if port in _given or (bus and port + BUS_OFFSET in _given):
                continue
            if _bindable(port) and (not bus or _bindable(port + BUS_OFFSET)):
                _given.add(port)
                if bus:
                    _given.add(port + BUS_OFFSET)
                return port
    raise RuntimeError(f"no free port (bus={bus}) in {candidates.start}-{candidates.stop - 1}")


def free_port_pair() -> tuple[int, int]:
    """A Redis Cluster node's (port, bus port): both free, the bus port is port + 10000."""
    port = free_port(bus=True)
    return port, port + BUS_OFFSET
