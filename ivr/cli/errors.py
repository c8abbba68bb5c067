"""How ``ivr`` commands report a failure an operator can act on.

One ``error: <message>`` line on stderr and a non-zero exit status, never a traceback:
operators script these commands and read their output line by line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click
import redis

from ivr import config
from ivr.config import Settings
from ivr.exceptions import IVRError

# Failures an operator can act on; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (IVRError, OSError, redis.RedisError)


def fail(message: str, status: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``status``."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    raise click.exceptions.Exit(status)


def load_config(
    path: str | Path | None,
    status: int = 2,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    *,
    web: bool = True,
) -> Settings:
    """The settings in ``path`` (see :func:`ivr.config.load`); a bad config is one error
    line and exit ``status``."""
    try:
        return config.load(path, overrides=overrides, web=web)
    except IVRError as exc:
        # A config lists each of its problems on a line of its own: one error line each.
        for line in str(exc).splitlines()[:-1]:
            click.echo(f"error: {' '.join(line.split())}", err=True)
        fail(str(exc).splitlines()[-1] if str(exc) else type(exc).__name__, status)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Report an expected failure inside the block with :func:`fail` (exit status 1)."""
    try:
        yield
    except EXPECTED_ERRORS as exc:
        fail(str(exc) or type(exc).__name__)
