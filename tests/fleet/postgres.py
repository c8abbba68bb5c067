"""A throwaway database on the machine's PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from psycopg import sql

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """SQLAlchemy URL of the server's maintenance database: $IVR_TEST_POSTGRES_URL or
    the local trust-auth default."""
    return os.environ.get("IVR_TEST_POSTGRES_URL", DEFAULT_URL)


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL in the form psycopg.connect takes."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a fresh database ``ivr_fleet_<12 hex>``; yield its SQLAlchemy URL; drop it
    (disconnecting whoever is still on it). Skips the test if the server is unreachable."""
    admin = server_url()
    name = f"ivr_fleet_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        # Imported here: the benchmark (bench/imports.py) uses this module's URL helpers
        # from a venv without the test extra.
        import pytest

        pytest.skip(f"PostgreSQL at {admin} is unreachable: {exc}".splitlines()[0])
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield sa.make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=3) as conn:
            # FORCE: web nodes killed mid-request may leave sessions the server has not
            # noticed yet; they must not keep the database alive.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))
