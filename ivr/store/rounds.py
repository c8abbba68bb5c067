"""Rounds: the Redis commands a webhook sends at one point, all at once, on any topology.

A Redis round trip costs a webhook more CPU and time than anything it computes, so the
stores do not send command by command: each step of a webhook builds a list of
:class:`Command` and :meth:`Link.send` sends it as *one round*. On a single Redis
(standalone, or the primary that Sentinel names) that is one pipeline on one pooled
connection; on a Redis Cluster the commands are grouped by the node that owns their key's
slot and every node's pipeline is written before any reply is read, so the nodes work in
parallel and the round costs one network latency, not one per node.

No MULTI: each command stands on its own, as it would sent alone; a command that must be
atomic with others is a Lua script over one hash tag (:mod:`ivr.store.keys`). Nothing is
ever retried after it may have run (a retried count would count twice): only replies that
prove a command did not run are followed up, on the same connection — NOSCRIPT (the
script's source is sent once) and, on a cluster, MOVED/ASK (the slot moved: the command
goes to its new owner).

*Durable* rounds (the lockout counts, SPEC §5) wait, after their writes, until one
replica has them (``WAIT 1 <[redis] replica_ack_timeout_ms>``) on every node that has
replicas, so a failover cannot forget a counted failure; a node whose replicas do not
acknowledge in time fails the round (:class:`~ivr.exceptions.ReplicaAckError`, the caller
is handed over as not identified). Whether a node has replicas is learnt from ``ROLE``
(:class:`ReplicaCache`); a node without any (a standalone Redis, or a freshly promoted
primary whose old primary has not rejoined yet) has nothing to wait for. A node whose
replicas all went away may instead be a former primary that a failover passed over (its
replica was promoted): the writes count only if the topology still names it primary
(:attr:`Durability.still_primary`, asked of the sentinels).

A webhook's rounds carry its :class:`~ivr.deadline.Budget`: every read of the round
waits until the budget is spent (redis-py sets that timeout for the read alone and
restores the connection's own afterwards), however long past ``[redis]
socket_timeout_s``, and a round whose budget is spent is not sent at all (its result
could not be used). Without a budget each read waits the socket timeout.

A command is *essential* (its failure fails the round: DependencyError naming the round's
operation) or not (a side channel: its failure is logged and its result is None). A
*tolerant* round fails no command for another's sake: each failed essential command's
result is its exception, so the caller can undo what did run (the lockout's counts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.connection import AbstractConnection
from redis.exceptions import AskError, MovedError, NoScriptError

from ivr.deadline import Budget, has_time
from ivr.exceptions import DependencyError, ReplicaAckError
from ivr.store.scripts import LuaScript

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
# A node known to have no replica is asked again (ROLE) at most this often.
ROLE_RECHECK_S = 1.0
# A read past its budget still takes a reply already received (a zero timeout would make
# the socket non-blocking).
MIN_READ_S = 0.001


@dataclass(frozen=True)
class Command:
    """One Redis command of a round, routed by ``key`` (None: any node will do)."""

    args: tuple[Any, ...]
    key: str | None
    script: LuaScript | None = None
    essential: bool = True
    what: str = "write"  # names the command in a log line or an error (never a value)

    def source_form(self) -> tuple[Any, ...]:
        """This script command as ``EVAL <source>`` (after the server answered NOSCRIPT)."""
        assert self.script is not None
        return ("EVAL", self.script.source, *self.args[2:])


def command(*args: Any, essential: bool = True, what: str = "write") -> Command:
    """A plain command whose first argument is its key, e.g. ``command("GET", key)``."""
    return Command(tuple(args), str(args[1]), None, essential, what)


def run(
    lua: LuaScript,
    keys: Sequence[str],
    args: Sequence[Any] = (),
    *,
    essential: bool = True,
    what: str = "script",
) -> Command:
    """A run of ``lua`` over ``keys`` (one hash tag) with ``args``, sent as EVALSHA."""
    return Command(("EVALSHA", lua.sha, len(keys), *keys, *args), keys[0], lua, essential, what)


@dataclass
class ReplicaCache:
    """How many replicas each node had when last asked (``ROLE``), by node name, and when.

    A node with replicas gets a ``WAIT`` after its durable writes, every time. A node
    without any is asked again at most every :data:`ROLE_RECHECK_S`, in the round itself:
    a standalone Redis pays nothing per write, and a replica that attaches is waited for
    within that time (a failover onto a replica that attached less than a second ago and
    has not synchronised yet could not be avoided anyway).
    """

    counts: dict[str, tuple[int, float]] = field(default_factory=dict)

    def plan(self, node: str, now: float) -> tuple[bool, bool]:
        """(send WAIT, send ROLE) for durable writes on ``node``."""
        known = self.counts.get(node)
        if known is not None and known[0] > 0:
            return True, False
        if known is not None and now - known[1] < ROLE_RECHECK_S:
            return False, False
        return False, True

    def learn(self, node: str, replicas: int, now: float) -> None:
        self.counts[node] = (replicas, now)


def always_primary(node: str) -> bool:
    """A topology without a third party to ask: a node that answers as primary is one."""
    return True


@dataclass(frozen=True)
class Durability:
    """How long a durable round waits for a replica's acknowledgement; and how to confirm
    that a node whose replicas went away is still the primary (``host:port`` → bool)."""

    timeout_ms: int
    replicas: ReplicaCache = field(default_factory=ReplicaCache)
    still_primary: Callable[[str], bool] = always_primary


class Exchange:
    """One node's share of a round, on one connection: write, read, follow up."""

    def __init__(
        self,
        node: str,
        conn: AbstractConnection,
        items: list[tuple[int, Command]],
        durability: Durability | None,
        budget: Budget | None = None,
    ) -> None:
        self.node = node
        self.conn = conn
        self.items = items
        self.replies: dict[int, Any] = {}
        self.error: BaseException | None = None
        self._durability = durability if any(c.essential for _, c in items) else None
        self._wait = self._role = False
        self._dirty = False  # commands sent whose replies are not read (yet)
        self._budget = budget

    def write(self) -> None:
        """Send every command (plus WAIT or ROLE when durable) without waiting."""
        commands = [c.args for _, c in self.items]
        if self._durability is not None:
            self._wait, self._role = self._durability.replicas.plan(self.node, time.monotonic())
            if self._wait:
                commands.append(("WAIT", 1, self._durability.timeout_ms))
            if self._role:
                commands.append(("ROLE",))
        try:
            self._send(commands)
        except CONNECTION_ERRORS as exc:
            self.error = exc

    def read(self) -> None:
        """Read every reply; then run the follow-ups the replies ask for."""
        if self.error is not None:
            return
        try:
            for index, _ in self.items:
                self.replies[index] = self._reply()
            acked = self._reply() if self._wait else None
            replicas = _replica_count(self._reply()) if self._role else None
            self._dirty = False
            rerun = self._rerun_unknown_scripts()
            # Durability is for writes that ran here: not for commands this node refused
            # (MOVED from a former primary, which then also refuses WAIT as a replica).
            ran = any(c.essential and not isinstance(self.replies[i], Exception)
                      for i, c in self.items)  # fmt: skip
            if self._durability is not None and ran:
                self._make_durable(self._durability, acked, replicas, bool(rerun))
        except CONNECTION_ERRORS as exc:
            self.error = exc

    def release(self, pool: Any) -> None:
        """Give the connection back; one with unread replies (or broken) is closed first."""
        if self._dirty or isinstance(self.error, CONNECTION_ERRORS):
            self.conn.disconnect()  # type: ignore[no-untyped-call]
        pool.release(self.conn)

    def _rerun_unknown_scripts(self) -> list[tuple[int, Command]]:
        rerun = [(i, c) for i, c in self.items if _unknown_script(self.replies[i], c)]
        if rerun:
            # The server lost or never had the script: nothing ran, send the source once.
            self._send([c.source_form() for _, c in rerun])
            for index, _ in rerun:
                self.replies[index] = self._reply()
            self._dirty = False
        return rerun

    def _make_durable(
        self, durability: Durability, acked: Any, replicas: int | None, rerun: bool
    ) -> None:
        """Make sure a replica has the writes wherever the node has replicas."""
        cache = durability.replicas
        if replicas is not None:
            cache.learn(self.node, replicas, time.monotonic())
        if self._wait and not rerun and _acks(acked) >= 1:
            return
        if not self._wait and not replicas:
            return  # no replica (known recently, or just asked): nothing could be promoted
        if not self._wait or rerun:
            # A replica appeared since we last asked, or writes ran after the WAIT.
            acked = self._ask(("WAIT", 1, durability.timeout_ms))
        if _acks(acked) >= 1:
            return
        replicas = _replica_count(self._ask(("ROLE",)))
        cache.learn(self.node, replicas, time.monotonic())
        if replicas == 0 and durability.still_primary(self.node):
            return  # the replicas went away: nothing to wait for (a failover took them)
        if replicas == 0:
            log.error("redis node %s lost its replicas and is no longer the primary",
                      self.node)  # fmt: skip
            self.error = ReplicaAckError("redis: the node is no longer the primary")
            return
        log.error("redis node %s: no replica acknowledged within %d ms", self.node,
                  durability.timeout_ms)  # fmt: skip
        self.error = ReplicaAckError(
            f"redis: no replica acknowledged within {durability.timeout_ms} ms"
        )

    def _ask(self, command: tuple[Any, ...]) -> Any:
        self._send([command])
        reply = self._reply()
        self._dirty = False
        return reply

    def _send(self, commands: list[tuple[Any, ...]]) -> None:
        self._dirty = True
        self.conn.send_packed_command(self.conn.pack_commands(commands))  # type: ignore[no-untyped-call]

    def _reply(self) -> Any:
        try:
            if self._budget is None:
                return self.conn.read_response()
            return self.conn.read_response(timeout=max(self._budget.left(), MIN_READ_S))
        except redis.ResponseError as exc:  # an error reply: the connection is still in sync
            return exc


def out_of_time(budget: Budget | None) -> redis.TimeoutError | None:
    """Why a round is not sent: its budget is spent (None: time is left, or no budget)."""
    if has_time(budget):
        return None
    return redis.TimeoutError("no time left before the webhook deadline")


def _acks(reply: Any) -> int:
    """Replicas that acknowledged, from a WAIT reply (an error reply: none)."""
    return reply if isinstance(reply, int) else 0


def _unknown_script(reply: Any, cmd: Command) -> bool:
    return isinstance(reply, NoScriptError) and cmd.script is not None


def _replica_count(role: Any) -> int:
    """Connected replicas in a ``ROLE`` reply (0 for anything but a primary's)."""
    if isinstance(role, list) and len(role) >= 3 and role[0] == b"master":
        return len(role[2] or ())
    return 0


def settle(
    commands: Sequence[Command], replies: dict[int, Any], operation: str, tolerant: bool = False
) -> list[Any]:
    """The results in order: essential errors raise (``tolerant``: are returned as the
    exception, for the caller to see which commands ran), side-channel errors become None."""
    results: list[Any] = []
    for index, cmd in enumerate(commands):
        reply = replies.get(index)
        if not isinstance(reply, Exception):
            results.append(reply)
            continue
        if cmd.essential and tolerant:
            results.append(reply)
            continue
        if cmd.essential:
            raise DependencyError(f"redis: {operation} failed ({type(reply).__name__})") from reply
        log.warning("%s in %s failed (%s); ignored", cmd.what, operation, type(reply).__name__)
        results.append(None)
    return results


def redirected(reply: Any) -> bool:
    """True for a cluster's MOVED/ASK reply: the command did not run."""
    return isinstance(reply, (MovedError, AskError))
