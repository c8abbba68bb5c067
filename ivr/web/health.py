"""``/healthz`` (the process is alive) and ``/readyz`` (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ivr.backlog import oldest_waiting_s
from ivr.exceptions import DependencyError
from ivr.services import Services
from ivr.store.redis_health import eviction_problem
from ivr.web.api import bearer_error

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: answers while the process can serve requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: every Redis primary and the PIN store answer, and no Redis may evict
    lockout keys; beside them, whether the workers keep up. Only ready or not per
    dependency: the PIN-failure rate and its alarm would tell an attacker whether
    spraying is noticed, so they (and the backlog's ages) need the API token."""
    services: Services = current_app.extensions["ivr"]
    checks: dict[str, object] = {}
    ready = True
    try:
        # INFO on every primary: reachability and the eviction policy in one look.
        problem = eviction_problem(services.link, services.settings.redis)
        checks["redis"] = "ok" if problem is None else "unsafe maxmemory-policy"
        ready = problem is None
        if _authorized(services):
            failures = services.lockout.failures_last_minute()
            checks["pin_failures_last_minute"] = failures
            alert = services.settings.lockout.global_alert_per_minute
            checks["pin_failure_alert"] = failures >= alert
    except Exception:  # noqa: BLE001 - any failure means "not ready", never a 500
        checks["redis"] = "unavailable"
        ready = False
    try:
        failed = services.startup.attempt()  # its tables, if the start could not
        if failed is not None:
            raise failed
        services.pins.ping()
        checks["pin_store"] = "ok"
    except DependencyError:
        checks["pin_store"] = "unavailable"
        ready = False
    _backlog(services, checks)
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response


def _authorized(services: Services) -> bool:
    """The request carries the API token (a wrong or missing one just gets less detail)."""
    return bearer_error(services.settings.api.token) is None


def _backlog(services: Services, checks: dict[str, object]) -> None:
    """Whether background work waits longer than ``[queue] backlog_alert_s`` (a worker
    down or stuck): shown, not a reason to take the node out of service — it still
    routes every caller. The ages per queue need the API token."""
    try:
        ages = oldest_waiting_s(services.queue, services.journal)
    except Exception:  # noqa: BLE001 - informational; Redis trouble shows above
        checks["worker_backlog"] = "unknown"
        return
    limit = services.settings.queue.backlog_alert_s
    checks["worker_backlog"] = "stale" if max(ages.values()) > limit else "ok"
    if _authorized(services):
        checks["worker_backlog_s"] = {name: round(age, 1) for name, age in ages.items()}
