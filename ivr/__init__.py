"""Service-PIN IVR: identify callers by Service-PIN before they reach an agent.

``gunicorn "ivr:create_app()"`` serves it. The factory is imported lazily so that the
pure parts (``ivr.flow``) stay importable without Flask, Redis or SQL.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from ivr.config import Settings
    from ivr.services import Services

__all__ = ["create_app"]


# gunicorn's exit status for "the app failed to load": its master then stops for good
# instead of booting new workers into the same bad config.
APP_LOAD_ERROR = 4


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the WSGI app (see :func:`ivr.app.create_app`).

    Called with no settings (as a server calls it), a bad config prints one
    ``config: …`` line per problem on stderr, without a traceback, and exits with
    :data:`APP_LOAD_ERROR`; callers that pass settings get the ConfigError.
    """
    from ivr.app import create_app as factory

    if settings is not None or services is not None:
        return factory(settings, services)
    from ivr import config
    from ivr.exceptions import ConfigError

    try:
        loaded = config.load()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    return factory(loaded, None)
