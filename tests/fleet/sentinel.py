"""Redis Sentinel on this machine: one primary, two replicas and three sentinels."""

from __future__ import annotations

import time
from types import TracebackType

from tests.fleet.redis_nodes import TRANSIENT, NotYet, RedisNode, stop_all, wait_for

SERVICE = "mymaster"
REPLICAS = 2
SENTINELS = 3
FORM_TIMEOUT_S = 30.0
# Quorum 2 of 3; a primary silent for 1 s is down, so failover starts within ~2 s.
SENTINEL_CONF = """\
port {port}
bind 127.0.0.1
dir "{dir}"
logfile "{log}"
sentinel monitor {service} 127.0.0.1 {primary} 2
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""


def pairs(reply: list[str] | dict[str, str]) -> dict[str, str]:
    """A map reply (SENTINEL MASTER/REPLICAS; a flat list in RESP2) as a dict."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return dict(zip(reply[::2], reply[1::2], strict=True))


class SentinelHarness:
    """A monitored primary with replicas, and the sentinels that fail it over; a context
    manager."""

    service = SERVICE

    def __init__(self) -> None:
        self.data: list[RedisNode] = []
        self.sentinels: list[RedisNode] = []

    def __enter__(self) -> SentinelHarness:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> SentinelHarness:
        """Start primary, replicas (in sync) and sentinels (that know them all)."""
        try:
            primary = RedisNode()
            self.data.append(primary)
            primary.start()
            for _ in range(REPLICAS):
                replica = RedisNode(args=("--replicaof", "127.0.0.1", str(primary.port)))
                self.data.append(replica)
                replica.start()
            for _ in range(SENTINELS):
                sentinel = RedisNode(args=("--sentinel",), conf="sentinel.conf")
                self.sentinels.append(sentinel)
                assert sentinel.conf is not None
                sentinel.conf.write_text(
                    SENTINEL_CONF.format(
                        port=sentinel.port,
                        dir=sentinel.dir,
                        log=sentinel.log,
                        service=SERVICE,
                        primary=primary.port,
                    ),
                    encoding="utf-8",
                )
                sentinel.start()
            self.wait_healthy(FORM_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the sentinels first (so they do not react), then the data nodes."""
        nodes = self.sentinels + self.data
        self.sentinels, self.data = [], []
        stop_all(nodes)

    @property
    def url(self) -> str:
        """``redis+sentinel://`` URL naming all sentinels and the service."""
        hosts = ",".join(s.addr for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def node(self, port: int) -> RedisNode:
        """The harness's data node on ``port``."""
        for node in self.data:
            if node.port == port:
                return node
        raise KeyError(f"no data node on port {port}")

    def primary(self) -> RedisNode:
        """The data node the first answering sentinel reports as master."""
        for sentinel in self.sentinels:
            try:
                return self.node(self._reported_port(sentinel))
            except TRANSIENT:
                continue
        raise RuntimeError(f"no sentinel answers GET-MASTER-ADDR-BY-NAME {SERVICE}")

    def replicas(self) -> list[RedisNode]:
        """Running data nodes whose ROLE is slave."""
        return [n for n in self.data if n.role() == "slave"]

    def fail_over(self, timeout: float = 20.0) -> float:
        """SIGKILL the primary; wait until all sentinels report another node that answers
        ROLE master. Returns seconds from kill to promotion."""
        old = self.primary()
        old.kill()
        return self._replaced(old, time.monotonic(), timeout)

    def pass_over(self, timeout: float = 20.0) -> RedisNode:
        """Freeze the primary until the sentinels have promoted a replica, then thaw it:
        the former primary answers again, still as a primary with its data, until the
        sentinels convert it (~10 s later). Returns the former primary."""
        old = self.primary()
        old.freeze()
        try:
            self._replaced(old, time.monotonic(), timeout)
        finally:
            old.thaw()
        return old

    def _replaced(self, old: RedisNode, since: float, timeout: float) -> float:
        """Wait until all sentinels report a node other than ``old`` that answers ROLE
        master; seconds from ``since`` to its promotion."""
        promoted: list[float] = []

        def done() -> bool:
            ports = self._reported_ports()
            if not promoted:
                heirs = [self.node(p) for p in set(ports) - {old.port}]
                if not any(heir.role() == "master" for heir in heirs):
                    raise NotYet(f"sentinels report master ports {ports}, none promoted yet")
                promoted.append(time.monotonic() - since)
            if len(set(ports)) != 1 or old.port in ports:
                raise NotYet(f"sentinels report master ports {ports}")
            return True

        wait_for(f"the sentinels to replace primary {old.addr}", done, timeout)
        return promoted[0]

    def rejoin(self, node: RedisNode, timeout: float = 30.0) -> None:
        """Restart killed ``node``; wait until the sentinels made it a replica of the new
        primary (link up) and everything is healthy again."""
        node.restart()
        # Sentinel converts a returning old primary only after it has reported the
        # master role for 8 s (4 hello periods), so this takes ~10 s.
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        """Wait: one primary, every replica in sync with it, every sentinel agreeing and
        seeing all replicas (none down) and the other sentinels."""
        wait_for("a healthy sentinel setup", self._healthy, timeout)

    def _reported_port(self, sentinel: RedisNode) -> int:
        return int(sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])

    def _reported_ports(self) -> list[int]:
        """The master port per live sentinel; every sentinel must answer."""
        return [self._reported_port(s) for s in self.sentinels if s.running]

    def _healthy(self) -> bool:
        ports = self._reported_ports()
        if len(set(ports)) != 1:
            raise NotYet(f"sentinels disagree on the master: {ports}")
        primary = self.node(ports[0])
        if primary.role() != "master":
            raise NotYet(f"reported master {primary.addr} has ROLE {primary.role()}")
        for node in self.data:
            if node is primary:
                continue
            info = node.info()
            state = (info.get("role"), info.get("master_port"), info.get("master_link_status"))
            if state != ("slave", str(primary.port), "up"):
                raise NotYet(f"{node.addr} (role, master_port, link) is {state}")
        for sentinel in self.sentinels:
            master = pairs(sentinel.call("SENTINEL", "MASTER", SERVICE))
            seen = (master["flags"], master["num-slaves"], master["num-other-sentinels"])
            if seen != ("master", str(REPLICAS), str(SENTINELS - 1)):
                raise NotYet(f"sentinel {sentinel.addr}: (flags, replicas, others) = {seen}")
            flags = [pairs(r)["flags"] for r in sentinel.call("SENTINEL", "REPLICAS", SERVICE)]
            if any(f != "slave" for f in flags):
                raise NotYet(f"sentinel {sentinel.addr} sees replicas with flags {flags}")
        return True
