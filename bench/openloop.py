"""Open-loop load generator: sends prepared requests at a fixed rate, whatever the answers.

``python -m bench.openloop URL FILE RATE SECONDS [--cycle] [--max-connections N]``
reads request lines (``METHOD<TAB>PATH<TAB>SIGNATURE<TAB>BODY``, bench/webhooks.py),
turns them into raw HTTP/1.1 bytes before the clock starts, then sends request ``i`` at
``start + i / RATE``. Latency is measured from that *intended* time to the last byte of
the answer, so a slow answer delays no later request's clock (no coordinated omission,
as in wrk2). A request that finds no idle keep-alive connection opens a new one (as
Twilio's many independent webhooks would) up to ``--max-connections``, beyond which it
waits, its wait counted in its latency. Prints one JSON object on stdout.

Its own error is measured too: ``lag`` is how late the scheduler dispatched each request
after its intended time (the generator's own delay, not the server's), and ``cpu_s`` its
own CPU time. Answers are sorted like bench/wrk/replay.lua's ``classify``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ivr.serving import allow_files

ANSWER_TIMEOUT_S = 10.0  # after the last send; a later answer counts as a timeout
PREOPEN = 16  # connections opened before the clock starts


def classify(status: int, body: bytes) -> str:
    """The answer's class, exactly as replay.lua's ``classify``."""
    if status == 204:
        return "no_content"
    if status != 200:
        return f"http_{status}"
    for reason in (b"unavailable", b"locked", b"verified"):
        if b'"reason":"' + reason + b'"' in body:
            return reason.decode()
    if b"<Enqueue" in body or b"<Dial" in body:
        return "routed_other"
    if b"<Gather" in body:
        return "gather"
    return "other"


def step_of(path: str) -> str:
    """Which webhook a request is, from its path: start, menu, pin, status or other."""
    if path == "/voice":
        return "start"
    if path.startswith("/voice/status"):
        return "status"
    if "node=" in path:
        node = path.split("node=", 1)[1].split("&", 1)[0]
        return "pin" if "pin" in node else node
    return "other"


def encode(line: str, host: str) -> tuple[str, bytes]:
    """A request line as raw HTTP/1.1 bytes (keep-alive), with its step."""
    method, path, signature, body = line.rstrip("\n").split("\t", 3)
    payload = body.encode("ascii")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return step_of(path), head.encode("ascii") + payload


@dataclass
class _Pending:
    index: int
    due: float
    payload: bytes
    retried: bool = False


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current: _Pending | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, pending: _Pending) -> None:
        assert self.transport is not None
        self.current = pending
        self.buf.clear()
        self.transport.write(pending.payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.current is None:
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length, close = 0, False
        for header in head[1:]:
            name, _, value = header.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        done, self.current = self.current, None
        self.gen.answered(done, status, body)
        if close and self.transport is not None:
            self.transport.close()
        else:
            self.gen.release(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.current is not None:
            lost, self.current = self.current, None
            # An idle keep-alive connection the server closed just as it was reused: the
            # server read nothing, so the request goes out once more on a fresh one.
            self.gen.lost(lost, nothing_read=not self.buf)
        self.gen.forget(self)


@dataclass
class _Generator:
    host: str
    port: int
    steps: list[str]
    max_connections: int
    idle: deque[_Conn] = field(default_factory=deque)
    waiting: deque[_Pending] = field(default_factory=deque)
    opened: int = 0
    live: int = 0
    peak: int = 0
    retries: int = 0
    latency: list[float] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    outstanding: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.latency = [-1.0] * len(self.steps)
        self.classes = ["timeout"] * len(self.steps)

    async def preopen(self, count: int) -> None:
        for _ in range(count):
            self._reserve()
            self.idle.append(await self._connect())

    def _reserve(self) -> None:
        # Counted when decided, not when connected: the cap holds while connects are in flight.
        self.opened += 1
        self.live += 1
        self.peak = max(self.peak, self.live)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        return conn

    def dispatch(self, pending: _Pending) -> None:
        self.outstanding += 1
        self._send(pending)

    def _send(self, pending: _Pending) -> None:
        while self.idle:
            conn = self.idle.popleft()
            if not conn.closed:
                conn.send(pending)
                return
        if self.live < self.max_connections:
            self._reserve()
            asyncio.get_running_loop().create_task(self._send_new(pending))
        else:
            self.waiting.append(pending)

    async def _send_new(self, pending: _Pending) -> None:
        try:
            conn = await self._connect()
        except OSError:
            self.live -= 1
            self.answered(pending, 0, b"")
            return
        conn.send(pending)

    def release(self, conn: _Conn) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)  # FIFO: every connection is reused, none idles out

    def forget(self, conn: _Conn) -> None:
        self.live -= 1
        if self.waiting and self.live < self.max_connections:
            self._send(self.waiting.popleft())

    def lost(self, pending: _Pending, *, nothing_read: bool) -> None:
        if nothing_read and not pending.retried:
            pending.retried = True
            self.retries += 1
            self._send(pending)
        else:
            self.answered(pending, 0, b"")

    def answered(self, pending: _Pending, status: int, body: bytes) -> None:
        self.latency[pending.index] = time.monotonic() - pending.due
        self.classes[pending.index] = classify(status, body) if status else "error"
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()


async def generate(url: str, payloads: Sequence[bytes], steps: list[str], rate: float,
                   max_connections: int) -> dict[str, object]:  # fmt: skip
    """Send ``payloads`` at ``rate`` per second; the run's raw figures."""
    parts = urlsplit(url)
    gen = _Generator(parts.hostname or "127.0.0.1", parts.port or 80, steps, max_connections)
    await gen.preopen(min(PREOPEN, max_connections))
    cpu0 = _cpu()
    lag: list[float] = []
    interval = 1.0 / rate
    start = time.monotonic() + 0.05
    for index, payload in enumerate(payloads):
        due = start + index * interval
        ahead = due - time.monotonic()
        if ahead > 0:
            # Never early (an early send would shorten the measured latency); the event
            # loop's timers wake up to ~1 ms late, which ``lag`` reports.
            await asyncio.sleep(ahead)
        lag.append(max(0.0, time.monotonic() - due))
        gen.dispatch(_Pending(index, due, payload))
    sent_s = time.monotonic() - start
    if gen.outstanding:
        gen.all_done.clear()
        # The unanswered keep the class "timeout".
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.all_done.wait(), ANSWER_TIMEOUT_S)
    return {
        "sent": len(payloads), "send_s": sent_s, "cpu_s": _cpu() - cpu0,
        "lag": sorted(lag), "latency": gen.latency, "classes": gen.classes, "steps": steps,
        "connections": gen.opened, "peak_connections": gen.peak, "retries": gen.retries,
    }  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(path: str, host: str, count: int, *, cycle: bool) -> tuple[list[str], list[bytes]]:
    """``count`` encoded requests from the file (cycled if ``cycle``, else each once)."""
    with open(path, encoding="ascii") as lines:
        encoded = [encode(line, host) for line in lines if line.strip()]
    if not cycle and len(encoded) < count:
        raise SystemExit(f"{path}: {len(encoded)} requests, {count} needed (each sent once)")
    picked = [encoded[i % len(encoded)] for i in range(count)]
    return [step for step, _ in picked], [payload for _, payload in picked]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("file")
    parser.add_argument("rate", type=float)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--cycle", action="store_true", help="reuse lines (stateless apps)")
    parser.add_argument("--max-connections", type=int, default=512)
    parser.add_argument("--nice", type=int, default=0, help="priority change (root: < 0)")
    args = parser.parse_args(argv)
    if args.nice:
        # Ahead of the servers on the shared cores, the generator sends on time; it
        # stands in for Twilio on another machine. Refused without root: runs as is.
        with contextlib.suppress(PermissionError):
            os.nice(args.nice)
    # Each connection is a descriptor: the product worker's own limit raiser.
    allow_files(args.max_connections + 64)
    host = urlsplit(args.url).netloc
    steps, payloads = load(args.file, host, round(args.rate * args.seconds), cycle=args.cycle)
    result = asyncio.run(generate(args.url, payloads, steps, args.rate, args.max_connections))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
