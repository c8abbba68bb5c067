"""The application factory: ``gunicorn "ivr:create_app()"``."""

from __future__ import annotations

import logging

from flask import Flask

from ivr import config, twiml
from ivr.config import Settings
from ivr.services import Services, build
from ivr.web import agent, api, health, provisioning, voice
from ivr.web import metrics as metrics_web
from ivr.web.signature import SignatureChecker

log = logging.getLogger("ivr")

# Twilio posts a few dozen short fields; anything larger is not a webhook.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app from ``settings`` (default: ``$IVR_CONFIG`` + environment).

    Configuration and flow errors surface here, at start-up, naming the key or node;
    a dependency that does not answer does not stop it (see :mod:`ivr.startup`).
    """
    settings = settings if settings is not None else config.load()
    # Only bad configuration stops the start: an unreachable database must not (a worker
    # that fails to boot brings gunicorn down); ivr.startup finishes the start later.
    services = services if services is not None else build(settings, tolerate_outage=True)
    services.startup.retry_in_background()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["ivr"] = services
    app.extensions["ivr.signature"] = SignatureChecker(settings)
    app.extensions["ivr.twiml"] = twiml.Renderer(settings.routing)
    if not settings.twilio.validate_signatures:
        log.warning("[twilio] validate_signatures = false: webhooks are NOT authenticated")
    app.register_blueprint(voice.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(provisioning.bp)
    app.register_blueprint(health.bp)
    agent.init_app(app, services)
    metrics_web.init_app(app, services)
    return app
