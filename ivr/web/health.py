"""``/healthz`` (the process is alive) and ``/readyz`` (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ivr.exceptions import DependencyError
from ivr.services import Services
from ivr.store.redis_health import eviction_problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: answers while the process can serve requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: every Redis primary and the PIN store answer, no Redis may evict lockout
    keys; also the global PIN-failure rate."""
    services: Services = current_app.extensions["ivr"]
    checks: dict[str, object] = {}
    ready = True
    try:
        # INFO on every primary: reachability and the eviction policy in one look.
        problem = eviction_problem(services.link, services.settings.redis)
        checks["redis"] = "ok" if problem is None else "unsafe maxmemory-policy"
        ready = problem is None
        failures = services.lockout.failures_last_minute()
        checks["pin_failures_last_minute"] = failures
        checks["pin_failure_alert"] = failures >= services.settings.lockout.global_alert_per_minute
    except Exception:  # noqa: BLE001 - any failure means "not ready", never a 500
        checks["redis"] = "unavailable"
        ready = False
    try:
        services.pins.ping()
        checks["pin_store"] = "ok"
    except DependencyError:
        checks["pin_store"] = "unavailable"
        ready = False
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response
