"""A six-node Redis Cluster (three primaries, one replica each) on this machine."""

from __future__ import annotations

import subprocess
import time
from types import TracebackType

from tests.fleet.redis_nodes import (
    TRANSIENT,
    NotYet,
    RedisNode,
    parse_info,
    redis_cli,
    stop_all,
    wait_for,
)

PRIMARIES = 3
SLOTS = 16384
FORM_TIMEOUT_S = 30.0
# node-timeout 1000: a dead primary is failed over within seconds. Validity factor 0: a
# replica always takes over, however long its link to the primary has been down.
CLUSTER_ARGS = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "1000",
    "--cluster-replica-validity-factor", "0",
)  # fmt: skip

# One row of CLUSTER SLOTS: (first slot, last slot, primary port, replica ports).
SlotRange = tuple[int, int, int, tuple[int, ...]]


def slot_map(node: RedisNode) -> tuple[SlotRange, ...]:
    """CLUSTER SLOTS as seen by ``node``, sorted (CLUSTER SLOTS omits failed replicas)."""
    rows = node.call("CLUSTER", "SLOTS")
    ranges = (
        (int(row[0]), int(row[1]), int(row[2][1]), tuple(sorted(int(r[1]) for r in row[3:])))
        for row in rows
    )
    return tuple(sorted(ranges))


def owner_of(slot: int, ranges: tuple[SlotRange, ...]) -> int | None:
    """Port of the primary serving ``slot`` in ``ranges``; None if unassigned."""
    return next((port for first, last, port, _ in ranges if first <= slot <= last), None)


class ClusterHarness:
    """Six redis-server processes joined by ``redis-cli --cluster create``; a context manager."""

    def __init__(self) -> None:
        self.nodes: list[RedisNode] = []

    def __enter__(self) -> ClusterHarness:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> ClusterHarness:
        """Start the nodes, create the cluster and wait until it is healthy everywhere."""
        try:
            for _ in range(PRIMARIES * 2):
                self.nodes.append(RedisNode(args=CLUSTER_ARGS, bus=True))
            for node in self.nodes:
                node.start()
            self._create()
            self.wait_healthy(FORM_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every node and remove their directories."""
        nodes, self.nodes = self.nodes, []
        stop_all(nodes)

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL with three seed nodes."""
        return "redis+cluster://" + ",".join(n.addr for n in self.nodes[:PRIMARIES])

    def primaries(self) -> list[RedisNode]:
        """Running nodes whose ROLE is master, in start order."""
        return [n for n in self.nodes if n.role() == "master"]

    def replicas(self) -> list[RedisNode]:
        """Running nodes whose ROLE is slave, in start order."""
        return [n for n in self.nodes if n.role() == "slave"]

    def node(self, port: int) -> RedisNode:
        """The harness's node on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no cluster node on port {port}")

    def node_for_key(self, key: str) -> RedisNode:
        """The primary serving ``key``'s slot, per the first live node that answers."""
        for asked in self._live():
            try:
                slot = int(asked.call("CLUSTER", "KEYSLOT", key))
                owner = owner_of(slot, slot_map(asked))
            except TRANSIENT:
                continue
            if owner is None:
                raise RuntimeError(f"slot {slot} of {key!r} is unassigned per {asked.addr}")
            return self.node(owner)
        raise RuntimeError("no live cluster node answers CLUSTER KEYSLOT/SLOTS")

    def fail_over(self, node: RedisNode, timeout: float = 15.0) -> float:
        """SIGKILL primary ``node``; wait until another node serves its slots as master and
        the cluster is ok on all live nodes. Returns seconds from kill to promotion."""
        if node.role() != "master":
            raise ValueError(f"{node!r} is not a running primary")
        mine = [first for first, _, port, _ in slot_map(node) if port == node.port]
        if not mine:
            raise ValueError(f"{node!r} serves no slots")
        killed = time.monotonic()
        node.kill()
        promoted: list[float] = []

        def done() -> bool:
            if not promoted:
                heir = self._heir(node, mine)
                if heir is None:
                    raise NotYet(f"no live node reports a new master for {node.addr}'s slots")
                promoted.append(time.monotonic() - killed)
            self._all_ok(slots=mine)
            return True

        wait_for(f"a replica to take over the slots of {node.addr}", done, timeout)
        return promoted[0]

    def rejoin(self, node: RedisNode, timeout: float = 20.0) -> None:
        """Restart killed ``node``; wait until it replicates (link up) and all is healthy."""
        node.restart()

        def rejoined() -> bool:
            info = node.info()
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                raise NotYet(
                    f"{node.addr} role:{info.get('role')} "
                    f"master_link_status:{info.get('master_link_status')}"
                )
            self._all_ok()
            self._replicated()
            return True

        wait_for(f"{node.addr} to rejoin as a replica", rejoined, timeout)

    def wait_healthy(self, timeout: float) -> None:
        """Wait: cluster_state ok and one slot map everywhere, each primary with a replica."""

        def healthy() -> bool:
            self._all_ok()
            self._replicated()
            return True

        wait_for("a healthy cluster (state ok, one slot map, replicas in sync)", healthy, timeout)

    def _live(self) -> list[RedisNode]:
        return [n for n in self.nodes if n.running]

    def _create(self) -> None:
        cmd = [redis_cli(), "--cluster", "create", *(n.addr for n in self.nodes)]
        cmd += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-2000:]
            raise RuntimeError(f"redis-cli --cluster create failed ({done.returncode}):\n{output}")

    def _heir(self, dead: RedisNode, slots: list[int]) -> RedisNode | None:
        """The node a live node reports serving all of ``slots``, if it is not ``dead`` and
        its ROLE is master."""
        for asked in self._live():
            try:
                ranges = slot_map(asked)
            except TRANSIENT:
                continue
            owners = {owner_of(slot, ranges) for slot in slots}
            if len(owners) == 1 and (port := owners.pop()) not in (None, dead.port):
                heir = self.node(port)
                if heir.role() == "master":
                    return heir
        return None

    def _all_ok(self, slots: list[int] | None = None) -> None:
        """cluster_state ok on every live node, and all agree on who serves the slots."""
        views: dict[int, object] = {}
        for node in self._live():
            state = parse_info(node.call("CLUSTER", "INFO")).get("cluster_state")
            if state != "ok":
                raise NotYet(f"{node.addr} cluster_state:{state}")
            ranges = slot_map(node)
            if slots is None:
                views[node.port] = ranges
            else:
                views[node.port] = tuple(owner_of(slot, ranges) for slot in slots)
        if len(set(views.values())) > 1:
            raise NotYet(f"nodes disagree on the slot owners: {views}")

    def _replicated(self) -> None:
        """Full coverage by PRIMARIES primaries, each with exactly one in-sync replica."""
        ranges = slot_map(self._live()[0])
        covered = sum(last - first + 1 for first, last, _, _ in ranges)
        primaries = {port for _, _, port, _ in ranges}
        if covered != SLOTS or len(primaries) != PRIMARIES:
            raise NotYet(f"{covered} slots covered by primaries {sorted(primaries)}")
        if any(len(replicas) != 1 for _, _, _, replicas in ranges):
            raise NotYet(f"CLUSTER SLOTS lists other than one replica per range: {ranges}")
        synced: dict[int, list[int]] = {port: [] for port in primaries}
        for node in self._live():
            info = node.info()
            if info.get("role") == "slave" and info.get("master_link_status") == "up":
                synced.setdefault(int(info["master_port"]), []).append(node.port)
        if any(len(synced[port]) != 1 for port in primaries):
            raise NotYet(f"in-sync replicas per primary: {synced}")
