"""A whole fleet on this machine: a distributed Redis, PostgreSQL and two web nodes.

:func:`running_fleet` starts a Redis Cluster (with a standalone Redis for the rq queue)
or a Sentinel group, a fresh PostgreSQL database as the PIN store with the test
accounts, and two gunicorn nodes of the product serving the same config. Calls placed
with :meth:`Fleet.phone` go over real HTTP, signed like Twilio's, and may alternate
between the nodes on every webhook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ivr import config
from ivr.config import Settings
from ivr.services import build
from ivr.store.accounts_csv import ImportRow
from ivr.store.hashing import PinHasher
from ivr.store.keys import KeyLayout
from tests.conftest import AUTH_TOKEN, PEPPER, WORKFLOW_SID, seed
from tests.fleet.cluster import ClusterHarness
from tests.fleet.http_phone import HttpPoster, Webhooks
from tests.fleet.postgres import postgres_database
from tests.fleet.redis_nodes import RedisNode
from tests.fleet.sentinel import SentinelHarness
from tests.fleet.web_nodes import WebNode
from tests.twilio_phone import PUBLIC_BASE, Call

CLUSTER = "cluster"
SENTINEL = "sentinel"
MAX_FAILURES = 5
WORKER_TIMEOUT_S = 60


@dataclass(frozen=True)
class Customer:
    """An account of the fleet's PIN store, each test with its own (lockouts persist)."""

    number: str
    phone: str
    pin: str


# Beside the shared test accounts: one per fleet test, each with a number of its own.
CUSTOMERS = tuple(Customer(f"3000{i:02d}", f"+49301000{i:02d}", "258147") for i in range(1, 9))


@dataclass
class Fleet:
    """The running fleet and what tests do with it."""

    topology: str
    settings: Settings
    env: dict[str, str]
    nodes: list[WebNode]
    cluster: ClusterHarness | None = None
    sentinel: SentinelHarness | None = None
    webhooks: Webhooks = field(default_factory=Webhooks)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def phone(self, caller: str, pick: Callable[[int], int] | None = None) -> Call:
        """A call over HTTP; its webhooks alternate between the nodes unless ``pick``."""
        poster = HttpPoster(self.urls, self.webhooks, pick)
        return Call(client=poster, auth_token=AUTH_TOKEN, caller=caller, base=PUBLIC_BASE)

    def logs(self, chars: int = 2000) -> list[str]:
        """The end of each web node's log (for a failing assertion's message)."""
        return [node.log.read_text(errors="replace")[-chars:] for node in self.nodes]

    def account_primary(self, customer_number: str) -> RedisNode:
        """The Redis primary that holds the account's lockout counters."""
        if self.cluster is not None:
            subject = PinHasher.from_settings(self.settings.pin_store).subject(
                "account", customer_number
            )
            return self.cluster.node_for_key(KeyLayout().account(subject).fails)
        assert self.sentinel is not None
        return self.sentinel.primary()

    def journal_primary(self) -> RedisNode:
        """The Redis primary that holds the audit journal."""
        if self.cluster is not None:
            return self.cluster.node_for_key(KeyLayout().audit_journal)
        assert self.sentinel is not None
        return self.sentinel.primary()

    def primaries(self) -> list[RedisNode]:
        """Every current primary (one per shard)."""
        if self.cluster is not None:
            return self.cluster.primaries()
        assert self.sentinel is not None
        return [self.sentinel.primary()]

    def fail_over(self, primary: RedisNode) -> float:
        """SIGKILL ``primary``; seconds until a replica was promoted in its place."""
        if self.cluster is not None:
            return self.cluster.fail_over(primary)
        assert self.sentinel is not None and primary is self.sentinel.primary()
        return self.sentinel.fail_over()

    def rejoin(self, node: RedisNode) -> None:
        """Restart a killed node; it comes back as a replica."""
        harness = self.cluster if self.cluster is not None else self.sentinel
        assert harness is not None
        harness.rejoin(node)

    def worker(self, log: Path) -> subprocess.Popen[bytes]:
        """``ivr worker`` (until stopped) on the fleet's config, its output in ``log``."""
        ivr = Path(sys.executable).with_name("ivr")
        with log.open("wb") as out:
            return subprocess.Popen(  # noqa: S603 - fixed argv
                [str(ivr), "worker"], env={**os.environ, **self.env}, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def worker_burst(self) -> subprocess.CompletedProcess[str]:
        """``ivr worker --burst`` on the fleet's config (journal and queues drained)."""
        ivr = Path(sys.executable).with_name("ivr")
        return subprocess.run(  # noqa: S603 - fixed argv
            [str(ivr), "worker", "--burst"], env={**os.environ, **self.env},
            capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False,
        )  # fmt: skip


FLEET_API_TOKEN = "fleet-api-token-0123456789abcdef"  # noqa: S105 - the tests' own


def write_config(path: Path, redis_url: str, queue_url: str, db_url: str) -> None:
    """The config every node of the fleet serves."""
    queue = f'[queue]\nurl = "{queue_url}"\n' if queue_url else ""
    path.write_text(
        f"""
[server]
public_base_url = "{PUBLIC_BASE}"
[twilio]
auth_token = "{AUTH_TOKEN}"
[redis]
url = "{redis_url}"
{queue}
[pin_store]
url = "{db_url}"
[lockout]
account_max_failures = {MAX_FAILURES}
[routing]
mode = "enqueue"
workflow_sid = "{WORKFLOW_SID}"
[api]
token = "{FLEET_API_TOKEN}"
""",
        encoding="utf-8",
    )


@contextmanager
def running_fleet(topology: str, work: Path) -> Iterator[Fleet]:
    """Start the fleet for ``topology`` (CLUSTER or SENTINEL); stop everything after."""
    with ExitStack() as stack:
        db_url = stack.enter_context(postgres_database())
        cluster = sentinel = None
        queue_url = ""
        if topology == CLUSTER:
            cluster = stack.enter_context(ClusterHarness())
            redis_url = cluster.url
            queue = stack.enter_context(RedisNode())  # rq needs one Redis
            queue_url = f"redis://{queue.addr}/0"
        else:
            sentinel = stack.enter_context(SentinelHarness())
            redis_url = sentinel.url
        path = work / "ivr.toml"
        write_config(path, redis_url, queue_url, db_url)
        env = {"IVR_CONFIG": str(path), "IVR_PIN_PEPPER": PEPPER}
        settings = config.load(path, env=env)
        services = build(settings)
        try:
            seed(services)
            services.pins.upsert_many([
                ImportRow(i, c.number, f"Fleet {i}", (c.phone,), c.pin)
                for i, c in enumerate(CUSTOMERS, 2)
            ])  # fmt: skip
        finally:
            services.close()
        nodes = [stack.enter_context(WebNode(env)) for _ in range(2)]
        yield Fleet(topology, settings, env, nodes, cluster, sentinel)
