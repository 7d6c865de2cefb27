"""Scratch PostgreSQL databases on the local server, for tests and benchmarks.

The server is the one these machines run on 127.0.0.1:5432 with trust
authentication (``scripts/test-services`` starts or installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresMissingError(RuntimeError):
    """The local PostgreSQL server cannot be reached."""


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new, empty database called ``name``; its URL, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        raise PostgresMissingError(
            f"PostgreSQL on 127.0.0.1:5432 is needed (make services): {exc}"
        ) from exc
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
