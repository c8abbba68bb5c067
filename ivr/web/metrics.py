"""``GET /metrics`` in Prometheus text format, behind ``Authorization: Bearer <[api] token>``.

:func:`init_app` also times every voice webhook (the histogram Twilio's 15 s budget is
judged by) with app-level hooks limited to the voice blueprint, so ``ivr/web/voice.py``
needs no knowledge of metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from ivr.metrics import LiveCollector, Metrics
from ivr.services import Services
from ivr.web import api

bp = Blueprint("metrics", __name__)

REGISTRY_KEY = "ivr.metrics"
VOICE_BLUEPRINT = "voice"


def init_app(app: Flask, services: Services) -> None:
    """Serve ``/metrics`` for ``services.metrics`` plus the live Redis gauges."""
    metrics = services.metrics
    registry = CollectorRegistry(auto_describe=False)
    directory = metrics.multiprocess_dir
    if directory is None:
        registry.register(metrics)
    else:  # every worker's files, this one's included; never one process's share
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(
        LiveCollector(
            services.lockout,
            services.queue,
            services.settings.lockout.global_alert_per_minute,
            services.journal,
        )  # fmt: skip
    )
    app.extensions[REGISTRY_KEY] = registry
    app.before_request(_start_timer)
    app.after_request(_observe(metrics))
    app.register_blueprint(bp)


@bp.before_request
def require_token() -> Response | None:
    """The screen-pop API's token (401 without credentials, 403 with wrong ones or when
    none is configured), also while that API is turned off."""
    services: Services = current_app.extensions["ivr"]
    return api.bearer_error(services.settings.api.token)


@bp.get("/metrics")
def metrics() -> Response:
    """The current values, in Prometheus' text exposition format."""
    registry: CollectorRegistry = current_app.extensions[REGISTRY_KEY]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def _start_timer() -> None:
    if request.blueprint == VOICE_BLUEPRINT:
        g.ivr_webhook_started = time.perf_counter()


def _observe(metrics: Metrics) -> Callable[[Response], Response]:
    def observe(response: Response) -> Response:
        started = g.pop("ivr_webhook_started", None)
        if started is not None and request.endpoint:
            elapsed = time.perf_counter() - started
            metrics.webhook_seconds.labels(request.endpoint).observe(elapsed)
        return response

    return observe
