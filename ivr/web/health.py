"""``/healthz`` (the process is alive) and ``/readyz`` (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

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
    lockout keys. Only ready or not per dependency: the PIN-failure rate and its alarm
    would tell an attacker whether spraying is noticed, so they need the API token."""
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
        services.pins.ping()
        checks["pin_store"] = "ok"
    except DependencyError:
        checks["pin_store"] = "unavailable"
        ready = False
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response


def _authorized(services: Services) -> bool:
    """The request carries the API token (a wrong or missing one just gets less detail)."""
    return bearer_error(services.settings.api.token) is None
