"""Database access: the engine, sessions and schema migrations.

SQLite is the default (WAL journal, one writer at a time); PostgreSQL serves the
multi-worker mode. The schema is owned by Alembic migrations in
``mailbot/migrations``; a brand-new database is migrated on first open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailbot.errors import ConfigError

log = logging.getLogger(__name__)

SessionFactory = sessionmaker[Session]
# pg_advisory_lock key of schema migrations: 'mailbot' in ASCII.
_LOCK_KEY = 0x6D61696C626F74


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL + NORMAL: a commit costs ~0.3 ms instead of ~1.5 ms, and readers
    # never block the one writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# A PostgreSQL session left idle inside a transaction this long is ended by the
# server, and its row locks with it: a worker frozen mid-transaction (a paused
# machine, a lost network) would otherwise hold the reference counter, and so
# the intake of every worker, for as long as it stays frozen. Longer than any
# step a transaction waits on: an SMTP exchange within its timeout.
IDLE_IN_TRANSACTION_SECONDS = 300
# TCP keepalive towards PostgreSQL: a dead server or path shows in about a
# minute, rather than after the kernel's two hours.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def make_engine(
    url: str, *, idle_in_transaction_seconds: float = IDLE_IN_TRANSACTION_SECONDS
) -> Engine:
    """An engine for this URL, with SQLite tuned for a mail queue."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Parameters are citizens' names, addresses and text: never in an
        # error message, where they would reach logs and the quarantine list.
        engine = create_engine(url, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    idle_ms = int(idle_in_transaction_seconds * 1000)
    options = f"-c idle_in_transaction_session_timeout={idle_ms}"
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": options, **_KEEPALIVES},
    )


def _alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    location = Path(__file__).with_name("migrations")
    config.set_main_option("script_location", str(location))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    """The newest migration shipped with this version."""
    script = ScriptDirectory.from_config(_alembic_config(engine))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate the schema to the newest revision; returns (before, after).

    Several hosts running ``upgrade`` at once take turns: the first migrates,
    the others find the schema done.
    """
    with _migration_lock(engine):
        return _upgrade(engine)


def _upgrade(engine: Engine) -> tuple[str | None, str | None]:
    before = current_revision(engine)
    if before is None:
        _refuse_foreign_tables(engine)
    else:
        _refuse_unknown_revision(engine, before)
    command.upgrade(_alembic_config(engine), "head")
    after = current_revision(engine)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return before, after


def _refuse_foreign_tables(engine: Engine) -> None:
    # A database with tables but no migration record is another program's:
    # building ours beside them would mix two applications' data.
    tables = sorted(inspect(engine).get_table_names())
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise ConfigError(
            f"storage: the database {_shown(engine)} holds tables mailbot did not "
            f"make ({shown}); give mailbot a database of its own"
        )


def _refuse_unknown_revision(engine: Engine, revision: str) -> None:
    # A revision none of ours: a newer mailbot's, or another program's
    # migrations. Neither can be upgraded from here.
    script = ScriptDirectory.from_config(_alembic_config(engine))
    if revision not in {r.revision for r in script.walk_revisions()}:
        raise ConfigError(
            f"storage: the database {_shown(engine)} is at migration {revision!r}, "
            "which this version of mailbot does not know (a newer mailbot's, or "
            "another program's)"
        )


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def open_database(url: str, *, create: bool = True) -> SessionFactory:
    """Open the database, creating a new one; refuse an outdated schema.

    With ``create=False`` a missing SQLite file is an error: a command that only
    reads, run from the wrong folder, must not report an empty new database.
    """
    parsed = make_url(url)
    missing = parsed.get_backend_name() == "sqlite" and not (
        parsed.database and Path(parsed.database).exists()
    )
    if missing and not create:
        raise ConfigError(
            f"storage.data_dir: no database at {parsed.database}; run mailbot where "
            "its storage/ is, or set [storage] data_dir"
        )
    engine = make_engine(url)
    try:
        _ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return sessionmaker(engine, expire_on_commit=False)


def _ensure_schema(engine: Engine) -> None:
    with _migration_lock(engine):
        current = current_revision(engine)
        if current is None:
            _upgrade(engine)
        elif current != head_revision(engine):
            _refuse_unknown_revision(engine, current)
            raise ConfigError(
                f"storage.database_url: schema is at {current}, this version needs "
                f"{head_revision(engine)}; run 'mailbot upgrade'"
            )


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    # Several workers started together on a new PostgreSQL database would all
    # create the schema at once; the first migrates, the others wait and see it.
    # SQLite takes no such lock: any handle this process opened on the
    # database file and closed again would drop SQLite's own POSIX locks
    # (trial 29 corrupted a database that way). One data folder has one
    # mailbot process at a time anyway.
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY}
            )


def single_writer(sessions: SessionFactory) -> bool:
    """Whether the database lets one writer in at a time (SQLite)."""
    bind = sessions.kw["bind"]
    return bool(bind.dialect.name == "sqlite")
