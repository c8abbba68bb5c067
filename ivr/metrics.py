"""Prometheus metrics: what the IVR counts, and what it reads from Redis at scrape time.

Counters and the webhook histogram live in a :class:`Metrics` object per app (its own
``CollectorRegistry``, never prometheus-client's global one, so apps and tests stay
isolated). Under gunicorn with several workers each worker counts its own requests, so
a scrape answered by one worker would show only its share. With prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set for gunicorn, see
:func:`multiprocess_dir`) every worker writes its values to files there and each scrape
adds up all of them. The gauges of :class:`LiveCollector` come from Redis when scraped,
so they are the same everywhere: the global PIN-failure rate (SPEC §5) and the depth of
each job queue.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from rq import Queue
from rq.registry import FailedJobRegistry

from ivr.backlog import oldest_waiting_s
from ivr.exceptions import ConfigError, DependencyError, ReplicaAckError
from ivr.flow.state import CallState, Verdict
from ivr.jobs import QUEUES
from ivr.observers import PinAttempt
from ivr.store.audit_journal import AuditJournal
from ivr.store.lockout import Lockout

# Twilio waits 15 s for a webhook; the interesting range is well below a second.
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir(env: Mapping[str, str] | None = None) -> str | None:
    """The multiprocess directory when metrics are shared between worker processes.

    prometheus-client decides at import, from this variable, to keep values in files, so
    it is read from the environment (not the config) exactly like the library does.
    Raises ConfigError if it is set but is not a writable directory: otherwise the first
    counter would fail with a traceback instead.
    """
    env = os.environ if env is None else env
    directory = env.get(MULTIPROC_ENV) or None
    if directory is not None and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        raise ConfigError(f"{MULTIPROC_ENV}={directory} is not a writable directory")
    return directory


class Metrics:
    """The app's own metrics and the registry they are collected from."""

    def __init__(self) -> None:
        # Where every worker's values meet (None: per process); a bad one fails start-up.
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()
        self.verifications = Counter(
            "ivr_pin_verifications", "PIN submissions by outcome.", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.lockouts = Counter(
            "ivr_lockouts", "Accounts locked after too many wrong PINs.", registry=self.registry
        )
        self.routed = Counter(
            "ivr_calls_routed", "Calls handed to an agent, by identified flag and reason.",
            ["identified", "reason"], registry=self.registry,
        )  # fmt: skip
        self.replica_ack_failures = Counter(
            "ivr_replica_ack_failures",
            "PIN attempts refused as unavailable: no Redis replica acknowledged the count.",
            registry=self.registry,
        )  # fmt: skip
        self.late_webhooks = Counter(
            "ivr_webhooks_late",
            "Voice webhooks answered at their deadline without their work (routed unavailable).",
            registry=self.registry,
        )  # fmt: skip
        self.shed_webhooks = Counter(
            "ivr_webhooks_shed",
            "Voice webhooks answered at once without their work (routed unavailable): they "
            "had waited over half the deadline in the server's queue (overload).",
            registry=self.registry,
        )  # fmt: skip
        self.resaves_dropped = Counter(
            "ivr_deferred_saves_dropped",
            "Routed calls whose state could not be saved before Redis returned (shown as "
            "in IVR until they expire).",
            registry=self.registry,
        )  # fmt: skip
        self.webhook_seconds = Histogram(
            "ivr_webhook_duration_seconds", "Time to answer a Twilio voice webhook.",
            ["endpoint"], buckets=WEBHOOK_BUCKETS, registry=self.registry,
        )  # fmt: skip
        for verdict in Verdict:  # every outcome is a series from the start, at 0
            self.verifications.labels(verdict.value)

    def collect(self) -> Iterable[Metric]:
        """Everything in :attr:`registry` (lets Metrics act as a collector itself)."""
        return self.registry.collect()


@dataclass(frozen=True)
class MetricsObserver:
    """Call observer counting verification outcomes, lockouts and routed calls."""

    metrics: Metrics

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        """Count a call once, when it is handed to an agent."""
        if state.routed and (previous is None or not previous.routed):
            reason = state.reason.value if state.reason else "none"
            self.metrics.routed.labels(str(state.identified).lower(), reason).inc()

    def pin_attempted(self, attempt: PinAttempt) -> None:
        """Count the outcome, and the lockout this attempt caused."""
        self.metrics.verifications.labels(attempt.verdict.value).inc()
        if attempt.locked_now:
            self.metrics.lockouts.inc()

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        """Count the counts that no replica acknowledged (a failover could lose them)."""
        if isinstance(error, ReplicaAckError):
            self.metrics.replica_ack_failures.inc()

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        """Status callbacks are not counted."""


class LiveCollector(Collector):
    """Gauges read from Redis at scrape time; an unreachable Redis shows as ``ivr_redis_up 0``."""

    def __init__(
        self,
        lockout: Lockout,
        queue: redis.Redis,
        alert_per_minute: int,
        journal: AuditJournal,
    ) -> None:
        self._lockout = lockout
        self._client = queue
        self._journal = journal
        self._alert = alert_per_minute

    def collect(self) -> Iterable[Metric]:
        """The failure rate, its alert threshold, queue depths and failed jobs."""
        threshold = GaugeMetricFamily(
            "ivr_pin_failures_alert_threshold",
            "Failures per minute across all accounts at which to alert ([lockout]).",
            value=self._alert,
        )
        up = GaugeMetricFamily("ivr_redis_up", "1 when Redis answered this scrape.")
        try:
            live = self._read()
        except (DependencyError, redis.RedisError, OSError):
            up.add_metric([], 0)
            return [threshold, up]
        up.add_metric([], 1)
        return [threshold, up, *live]

    def _read(self) -> list[Metric]:
        failures = GaugeMetricFamily(
            "ivr_pin_failures_last_minute",
            "Failed PIN submissions over all accounts in the last 60 s (spraying alarm).",
            value=self._lockout.failures_last_minute(),
        )
        depth = GaugeMetricFamily("ivr_queue_depth", "Jobs waiting in a queue.", labels=["queue"])
        failed = GaugeMetricFamily(
            "ivr_jobs_failed", "Jobs that used up their retries (kept for requeue).",
            labels=["queue"],
        )  # fmt: skip
        for name in QUEUES:
            queue = Queue(name, connection=self._client)
            depth.add_metric([name], queue.count)
            registry = FailedJobRegistry(queue=queue)
            failed.add_metric([name], registry.get_job_count(cleanup=False))
        backlog = GaugeMetricFamily(
            "ivr_audit_backlog",
            "PIN attempts waiting in Redis to be written to the SQL audit trail.",
            value=self._journal.backlog(),
        )
        oldest = GaugeMetricFamily(
            "ivr_backlog_oldest_seconds",
            "How long the oldest waiting job of a queue (or audit-journal entry) has waited.",
            labels=["queue"],
        )
        for name, age in oldest_waiting_s(self._client, self._journal).items():
            oldest.add_metric([name], round(age, 3))
        return [failures, depth, failed, backlog, oldest]
