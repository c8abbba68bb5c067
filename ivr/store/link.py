"""The state Redis as one object, whatever its topology: rounds, and a redis-py client.

:class:`SingleLink` serves a standalone Redis and the primary of a Sentinel group (its
client's pool asks the sentinels where the primary is whenever it connects);
:class:`ClusterLink` serves a Redis Cluster. Both send rounds (:mod:`ivr.store.rounds`)
for the webhooks' hot path and hand out a redis-py client (:attr:`Link.client`) for
everything else, where redis-py's own routing is fine: single-slot reads, the board's
stream, the worker's journal reads.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import MovedError, RedisClusterException

from ivr.deadline import Budget
from ivr.exceptions import DependencyError, ReplicaAckError
from ivr.store.redis_url import Topology
from ivr.store.rounds import (
    CONNECTION_ERRORS,
    Command,
    Durability,
    Exchange,
    out_of_time,
    redirected,
    settle,
)

log = logging.getLogger(__name__)

# The commands of one node that failed, and why.
Failure = tuple[list[tuple[int, Command]], BaseException]
# After a node failed, the cluster's slot map is read again at most this often per
# process: a dead primary must not make every webhook re-read the map.
REFRESH_INTERVAL_S = 0.5


class Link(ABC):
    """What the stores use of the state Redis, whatever its topology."""

    topology: Topology

    @property
    @abstractmethod
    def client(self) -> Any:
        """The redis-py client (``redis.Redis`` or ``RedisCluster``) for non-round use."""

    @abstractmethod
    def send(
        self,
        commands: Sequence[Command],
        operation: str,
        *,
        durable: bool = False,
        tolerant: bool = False,
        budget: Budget | None = None,
    ) -> list[Any]:
        """Send ``commands`` as one round; their results in order (see :mod:`.rounds`).

        ``durable``: wait for a replica's acknowledgement on every node with replicas
        that ran an essential command (ReplicaAckError when none acknowledges in time).
        DependencyError naming ``operation`` when Redis cannot be reached or an essential
        command failed; ``tolerant``: a failed command's result is its exception instead.
        ``budget``: every read waits until it is spent (None: the socket timeout), and
        nothing is sent once it is (a webhook's rounds, :mod:`ivr.deadline`).
        """

    @abstractmethod
    def primaries(self) -> list[redis.Redis]:
        """A client per primary (for start-up checks); DependencyError if unreachable."""

    @abstractmethod
    def close(self) -> None:
        """Close every pooled connection."""


def _raise(error: BaseException | None, operation: str) -> None:
    if isinstance(error, ReplicaAckError):
        raise error
    if error is not None:
        raise DependencyError(f"redis: {operation} failed ({type(error).__name__})") from error


class SingleLink(Link):
    """A standalone Redis, or a Sentinel group's primary, behind one connection pool."""

    def __init__(self, client: redis.Redis, topology: Topology, durability: Durability) -> None:
        self._client = client
        self.topology = topology
        self._durability = durability

    @property
    def client(self) -> redis.Redis:
        return self._client

    def send(
        self,
        commands: Sequence[Command],
        operation: str,
        *,
        durable: bool = False,
        tolerant: bool = False,
        budget: Budget | None = None,
    ) -> list[Any]:
        if not commands:
            return []
        pool = self._client.connection_pool
        try:
            late = out_of_time(budget)
            if late is not None:
                raise late
            conn = pool.get_connection()
        except CONNECTION_ERRORS as exc:
            if tolerant:
                return [exc] * len(commands)  # nothing ran
            raise DependencyError(f"redis: {operation} failed ({type(exc).__name__})") from exc
        node = f"{getattr(conn, 'host', '')}:{getattr(conn, 'port', '')}"
        exchange = Exchange(node, conn, list(enumerate(commands)),
                            self._durability if durable else None, budget)  # fmt: skip
        try:
            exchange.write()
            exchange.read()
        finally:
            exchange.release(pool)
        if tolerant and isinstance(exchange.error, CONNECTION_ERRORS):
            # The replies read are real; the commands whose replies never came are failed.
            return [exchange.replies.get(i, exchange.error) for i in range(len(commands))]
        _raise(exchange.error, operation)
        return settle(commands, exchange.replies, operation, tolerant)

    def primaries(self) -> list[redis.Redis]:
        return [self._client]

    def close(self) -> None:
        # A client built on a pool it was handed does not own it: close both.
        self._client.close()
        self._client.connection_pool.disconnect()


class ClusterLink(Link):
    """A Redis Cluster: each round fans out to the nodes owning its keys, in parallel."""

    topology = Topology.CLUSTER

    def __init__(self, factory: Callable[[], RedisCluster], durability: Durability) -> None:
        # Built on first use: RedisCluster reads the slot map when it is created, and a
        # cluster that is down while the service starts must not stop the start.
        self._factory = factory
        self._cluster: RedisCluster | None = None
        self._durability = durability
        self._lock = threading.Lock()
        self._refreshed_at = 0.0

    @property
    def client(self) -> RedisCluster:
        if self._cluster is None:
            with self._lock:
                if self._cluster is None:
                    self._cluster = self._create()
        return self._cluster

    def _create(self) -> RedisCluster:
        # While the cluster is unreachable, one attempt per REFRESH_INTERVAL_S: the
        # webhooks in between fail at once instead of each waiting for every seed.
        if time.monotonic() - self._refreshed_at < REFRESH_INTERVAL_S:
            raise DependencyError("redis: cluster unreachable (retrying shortly)")
        self._refreshed_at = time.monotonic()
        try:
            return self._factory()
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise DependencyError(f"redis: cluster unreachable ({type(exc).__name__})") from exc

    def send(
        self,
        commands: Sequence[Command],
        operation: str,
        *,
        durable: bool = False,
        tolerant: bool = False,
        budget: Budget | None = None,
    ) -> list[Any]:
        if not commands:
            return []
        first = list(enumerate(commands))
        replies, unsent = self._round(first, operation, durable, tolerant, budget)
        # Commands that did not run: their slot moved (MOVED: a failover or a resharding,
        # the slot map learnt the new owner from the reply) or their node refused the
        # connection (it died: the slot map was read again). One more round for them.
        again = [(i, commands[i]) for i, reply in replies.items() if redirected(reply)]
        again += [item for share, _ in unsent for item in share]
        if again:
            more, unsent = self._round(again, operation, durable, tolerant, budget)
            replies.update(more)
            self._absorb(unsent, replies, operation, tolerant)
        return settle(commands, replies, operation, tolerant)

    def _round(
        self,
        items: list[tuple[int, Command]],
        operation: str,
        durable: bool,
        tolerant: bool,
        budget: Budget | None,
    ) -> tuple[dict[int, Any], list[Failure]]:
        """One round; its replies, and the shares whose node refused the connection
        (nothing of them ran). Any other failure is absorbed (see :meth:`_absorb`).
        With its budget spent, nothing is sent: each command's reply is that error."""
        late = out_of_time(budget)
        if late is not None:
            return {index: late for index, _ in items}, []
        cluster = self.client
        exchanges: list[tuple[Exchange, Any]] = []
        unsent: list[Failure] = []
        try:
            for node, share in self._by_node(cluster, items, operation).items():
                pool = cluster.get_redis_connection(node).connection_pool
                try:
                    conn = pool.get_connection()
                except CONNECTION_ERRORS as exc:
                    unsent.append((share, exc))
                    continue
                exchange = Exchange(node.name, conn, share,
                                    self._durability if durable else None, budget)  # fmt: skip
                exchanges.append((exchange, pool))
            for exchange, _ in exchanges:
                exchange.write()
            for exchange, _ in exchanges:
                exchange.read()
        finally:
            for exchange, pool in exchanges:
                exchange.release(pool)
        if unsent:
            self._refresh()
        replies: dict[int, Any] = {}
        for exchange, _ in exchanges:
            replies.update(exchange.replies)
        failed = [(e.items, e.error) for e, _ in exchanges if e.error is not None]
        self._absorb(failed, replies, operation, tolerant)
        for reply in replies.values():
            if isinstance(reply, MovedError):
                cluster.nodes_manager.move_slot(reply)
        return replies, unsent

    def _absorb(
        self, failures: list[Failure], replies: dict[int, Any], operation: str, tolerant: bool
    ) -> None:
        """A node that failed fails the round if it had essential commands (unless the
        round is tolerant; a missing replica acknowledgement always fails it); otherwise
        its commands' results become the error (side channels: logged and ignored)."""
        if any(isinstance(error, CONNECTION_ERRORS) for _, error in failures):
            self._refresh()
        fatal = [
            error for share, error in failures
            if isinstance(error, ReplicaAckError)
            or (not tolerant and any(c.essential for _, c in share))
        ]  # fmt: skip
        if fatal:
            acks = [e for e in fatal if isinstance(e, ReplicaAckError)]
            _raise((acks or fatal)[0], operation)
        for share, error in failures:
            for index, _ in share:
                replies[index] = error

    def _by_node(
        self, cluster: RedisCluster, items: list[tuple[int, Command]], operation: str
    ) -> dict[ClusterNode, list[tuple[int, Command]]]:
        groups: dict[ClusterNode, list[tuple[int, Command]]] = {}
        for index, cmd in items:
            try:
                slot = cluster.keyslot(cmd.key or "")  # type: ignore[no-untyped-call]
                node = cluster.nodes_manager.get_node_from_slot(slot)
            except redis.RedisError as exc:  # slot not covered: a shard is down
                self._refresh()
                raise DependencyError(f"redis: {operation} failed ({type(exc).__name__})") from exc
            groups.setdefault(node, []).append((index, cmd))
        return groups

    def _refresh(self) -> None:
        """Read the slot map again (at most every REFRESH_INTERVAL_S, one thread at a time)."""
        now = time.monotonic()
        if now - self._refreshed_at < REFRESH_INTERVAL_S or not self._lock.acquire(blocking=False):
            return
        try:
            self._refreshed_at = now
            if self._cluster is not None:
                self._cluster.nodes_manager.initialize()
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            log.warning("redis cluster: slot map not refreshed (%s)", type(exc).__name__)
        finally:
            self._lock.release()

    def primaries(self) -> list[redis.Redis]:
        cluster = self.client
        primaries = cluster.get_primaries()  # type: ignore[no-untyped-call]
        return [cluster.get_redis_connection(node) for node in primaries]

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
