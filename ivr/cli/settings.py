"""The settings of an ``ivr`` command, loaded only when the command runs.

The group does not load the config itself: ``ivr accounts --help`` (or any ``--help``)
must work on a machine without one. A command that needs settings takes them with
:func:`pass_settings`; a bad or missing config is then one error line (exit 2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import click

from ivr.cli.dev_support import command_config
from ivr.cli.errors import load_config
from ivr.config import Settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class ConfigSource:
    """Where the settings come from (``--config`` / ``$IVR_CONFIG``); loaded once."""

    path: str | None
    _loaded: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Loaded on first use. Without a path, in a directory where ``ivr dev`` runs (or
        ran), its config and Redis. Only what the commands use is required: no Twilio
        auth token (they verify no webhook)."""
        if self._loaded is None:
            found = command_config() if self.path is None else None
            path, overrides = found if found is not None else (self.path, {})
            self._loaded = load_config(path, overrides=overrides, web=False)
        return self._loaded


def current_settings() -> Settings:
    """The running command's settings: given by the caller (tests pass ``obj``), or
    loaded from the group's config source now."""
    ctx = click.get_current_context()
    given = ctx.find_object(Settings)
    if given is not None:
        return given
    source = ctx.find_object(ConfigSource) or ConfigSource(None)
    return source.settings()


def pass_settings(command: Callable[Concatenate[Settings, P], R]) -> Callable[P, R]:
    """Call ``command`` with the settings as its first argument (like click.pass_obj)."""

    @functools.wraps(command)
    def with_settings(*args: P.args, **kwargs: P.kwargs) -> R:
        return command(current_settings(), *args, **kwargs)

    return with_settings
