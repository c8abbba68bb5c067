"""In-process measurements of the product's Redis use: round trips and memory per call.

Both run the real app (``ivr.create_app`` from the benchmark's config) through Flask's
test client with requests signed like Twilio's, on a Redis database of their own and
while nothing else runs, so every Redis command and byte counted is the product's.

Round trips are counted on the client side, where they happen: every
``send_packed_command`` of a redis-py connection is one request/reply exchange (a
pipeline of many commands is one), every packed command is one command. *Rounds* are
the sequential ones: sends that go out before any reply is read form one round (on a
cluster, one pipeline per node written together and then read: one network latency,
however many nodes). On a single Redis rounds and round trips are the same. Memory is
``INFO memory used_memory`` before and after opening calls, divided by their number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

import redis
from flask.testing import FlaskClient
from redis.connection import AbstractConnection

from bench.accounts import account
from bench.keys import pattern
from bench.plan import Store
from bench.webhooks import PUBLIC_BASE, Signer, Webhook, status_params, voice_params
from bench.workload import Workload
from ivr.webhook_runner import THREAD_PREFIX


@dataclass
class _Counter:
    """Round trips and commands sent by one thread and by the webhook threads it hands
    its work to (others, e.g. background ones, ignored)."""

    thread: int = field(default_factory=threading.get_ident)
    trips: int = 0
    commands: int = 0
    rounds: int = 0
    reading: bool = True  # the last exchange step was a read: the next send starts a round


@contextmanager
def counting() -> Iterator[_Counter]:
    """Count redis-py round trips and commands of the current thread while inside."""
    counter = _Counter()
    # redis-py leaves these untyped; they are only passed through.
    send_packed: Callable[..., None] = AbstractConnection.send_packed_command
    send_one: Callable[..., None] = AbstractConnection.send_command
    pack_many: Callable[..., Any] = AbstractConnection.pack_commands
    read: Callable[..., Any] = AbstractConnection.read_response

    def mine() -> bool:
        current = threading.current_thread()
        return current.ident == counter.thread or current.name.startswith(THREAD_PREFIX)

    def counted_send_packed(
        self: AbstractConnection, command: Any, check_health: bool = True
    ) -> None:
        if mine():
            counter.trips += 1
            counter.rounds += counter.reading
            counter.reading = False
        send_packed(self, command, check_health)

    def counted_read(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        if mine():
            counter.reading = True
        return read(self, *args, **kwargs)

    def counted_send_one(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        if mine():
            counter.commands += 1
        send_one(self, *args, **kwargs)

    def counted_pack_many(self: AbstractConnection, commands: Any) -> Any:
        commands = list(commands)
        if mine():
            counter.commands += len(commands)
        return pack_many(self, commands)

    # A single command goes send_command -> send_packed_command; a pipeline goes
    # pack_commands -> send_packed_command: one round trip each either way.
    patches = {
        "send_packed_command": counted_send_packed,
        "send_command": counted_send_one,
        "pack_commands": counted_pack_many,
        "read_response": counted_read,
    }
    originals = {name: getattr(AbstractConnection, name) for name in patches}
    try:
        for name, patched in patches.items():
            setattr(AbstractConnection, name, patched)
        yield counter
    finally:
        for name, original in originals.items():
            setattr(AbstractConnection, name, original)


@dataclass(frozen=True)
class Trips:
    """Redis round trips and commands per webhook of one kind (averaged)."""

    webhook: str
    round_trips: float
    commands: float
    rounds: float


@dataclass(frozen=True)
class Memory:
    """Redis memory held by calls in flight (at the PIN prompt after a wrong PIN)."""

    calls: int
    bytes_per_call: float
    key_bytes: dict[str, int]


@dataclass
class Probe:
    """Drives the in-process app with signed webhooks."""

    client: FlaskClient
    signer: Signer
    workload: Workload
    # The state Redis, for memory readings (None on a cluster: round trips only).
    redis: redis.Redis | None = None

    def post(self, hook: Webhook) -> int:
        signature = self.signer.signature(hook)
        response = self.client.post(
            hook.path, data=hook.params, headers={"X-Twilio-Signature": signature},
            base_url=PUBLIC_BASE,
        )  # fmt: skip
        return response.status_code

    def round_trips(self, samples: int) -> list[Trips]:
        """Round trips per webhook kind, after one unmeasured request of each kind."""
        kinds = self.workload.probe_hooks(Store.LARGE, samples + 1)
        results: list[Trips] = []
        for name, hooks in kinds.items():
            self.post(hooks[0])  # scripts loaded, pool connections open
            trips: list[int] = []
            commands: list[int] = []
            rounds: list[int] = []
            for hook in hooks[1:]:
                with counting() as counter:
                    self.post(hook)
                trips.append(counter.trips)
                commands.append(counter.commands)
                rounds.append(counter.rounds)
            results.append(Trips(name, mean(trips), mean(commands), mean(rounds)))
        return results

    def memory(self, calls: int) -> Memory:
        """Open ``calls`` calls up to a wrong PIN (the fullest in-flight state)."""
        assert self.redis is not None, "memory is measured on a single Redis"
        walk = self._walker()
        walk(0)  # scripts and connections exist before the first reading
        before = _used_memory(self.redis)
        for index in range(1, calls + 1):
            walk(index)
        after = _used_memory(self.redis)
        # The keys include the unmeasured first call's (and the shared global ones).
        return Memory(calls, (after - before) / calls, self._key_bytes(calls + 1))

    def finished_memory(self, calls: int, drain: Callable[[], object]) -> float:
        """Redis memory a call still holds once it is over: whole calls (right PIN,
        routed, status completed) whose background jobs ``drain`` has done, per call.
        Everything of theirs that expires later (call state, markers) is included."""
        assert self.redis is not None, "memory is measured on a single Redis"
        sids, paths = self.workload.sids, self.workload.call_paths()

        def call(index: int) -> None:
            acc, sid = account(index), sids.new()
            self.post(Webhook("/voice", voice_params(sid, acc.phone, status="ringing")))
            self.post(Webhook(paths.menu, voice_params(sid, acc.phone, digits="1")))
            self.post(Webhook(paths.pin, voice_params(sid, acc.phone, digits=acc.pin)))
            self.post(Webhook("/voice/status", status_params(sid, acc.phone)))

        call(0)  # scripts loaded, connections open, registries made
        drain()
        before = _used_memory(self.redis)
        for index in range(1, calls + 1):
            call(index)
        drain()
        return (_used_memory(self.redis) - before) / calls

    def _walker(self) -> Callable[[int], None]:
        sids = self.workload.sids
        paths = self.workload.call_paths()

        def walk(index: int) -> None:
            acc = account(index)
            sid = sids.new()
            self.post(Webhook("/voice", voice_params(sid, acc.phone, status="ringing")))
            self.post(Webhook(paths.menu, voice_params(sid, acc.phone, digits="1")))
            self.post(Webhook(paths.pin, voice_params(sid, acc.phone, digits=acc.wrong_pin)))

        return walk

    def _key_bytes(self, calls: int) -> dict[str, int]:
        """MEMORY USAGE by key pattern, averaged per call."""
        assert self.redis is not None
        totals: dict[str, int] = {}
        for key in self.redis.scan_iter(count=1000):
            usage = self.redis.memory_usage(key) or 0
            name = pattern(key.decode("utf-8", "replace"))
            totals[name] = totals.get(name, 0) + int(usage)
        return {name: round(total / calls) for name, total in sorted(totals.items())}


def _used_memory(client: redis.Redis) -> int:
    info: dict[str, Any] = client.info("memory")
    return int(info["used_memory"])
