"""Service-PIN IVR: identify callers by Service-PIN before they reach an agent.

``gunicorn "ivr:create_app()"`` serves it. The factory is imported lazily so that the
pure parts (``ivr.flow``) stay importable without Flask, Redis or SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from ivr.config import Settings
    from ivr.services import Services

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the WSGI app (see :func:`ivr.app.create_app`)."""
    from ivr.app import create_app as factory

    return factory(settings, services)
