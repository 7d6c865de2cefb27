"""The shipped migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from clirun import SIGNING_KEY, write_config
from conftest import fresh_postgres_database
from sqlalchemy import inspect, text

import mailbot.db
from mailbot.db import head_revision, make_engine, open_database, upgrade
from mailbot.errors import ConfigError
from mailbot.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)

    before, after = upgrade(engine)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()

    # A model change without its own revision would show here; a revision
    # already shipped is never edited, since databases are at it.
    assert drift == []
    assert (before, after) == (None, head_revision(engine))
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_a_database_of_another_program_is_refused_untouched(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))

    with pytest.raises(ConfigError) as refused:
        upgrade(engine)
    with pytest.raises(ConfigError) as refused_to_open:
        open_database(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()

    assert str(refused.value) == (
        f"storage: the database {engine.url.render_as_string()} holds tables "
        "mailbot did not make (invoices); give mailbot a database of its own"
    )
    assert str(refused_to_open.value) == str(refused.value)
    assert tables == {"invoices"}


def test_a_database_at_a_migration_we_do_not_know_is_refused(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        )
        connection.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))

    with pytest.raises(ConfigError) as refused:
        upgrade(engine)
    with pytest.raises(ConfigError) as refused_to_open:
        open_database(database_url)
    engine.dispose()

    assert str(refused.value) == (
        f"storage: the database {engine.url.render_as_string()} is at migration "
        "'abc123', which this version of mailbot does not know (a newer "
        "mailbot's, or another program's)"
    )
    assert str(refused_to_open.value) == str(refused.value)


def test_a_database_of_the_first_release_upgrades_and_keeps_its_tickets(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(Path(mailbot.db.__file__).with_name("migrations"))
    )
    config.attributes["engine"] = engine
    command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tickets (reference, status, unit_code, "
                "matched_keywords, complainant_email, complainant_name, subject, "
                "account, inbox_address, identity_provided, received_at, due_at, "
                "updated_at, escalation_step) VALUES ('PRG-2026-000001-5', "
                "'received', 'ekbang', '[]', 'budi@example.com', 'Budi', 'Jalan', "
                "'dinas', 'porong@sidoarjokab.go.id', false, '2026-12-01 01:00:00', "
                "'2026-12-02 01:00:00', '2026-12-01 01:00:00', 0)"
            )
        )

    with pytest.raises(ConfigError) as outdated:
        open_database(database_url)
    before, after = upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT reference, first_due_at FROM tickets")
        ).all()
    engine.dispose()

    assert str(outdated.value) == (
        "storage.database_url: schema is at 0001, this version needs 0003; "
        "run 'mailbot upgrade'"
    )
    assert (before, after) == ("0001", "0003")
    assert [tuple(row) for row in rows] == [("PRG-2026-000001-5", None)]


def test_a_database_of_an_early_build_of_0001_is_repaired(database_url: str) -> None:
    # Trial 29: 0001 was edited after databases were made with it; such a
    # database upgraded "fine" and then failed every poll.
    engine = make_engine(database_url)
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(Path(mailbot.db.__file__).with_name("migrations"))
    )
    config.attributes["engine"] = engine
    command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE mailbox_incidents"))
        connection.execute(text("ALTER TABLE mailbox_state DROP COLUMN waiting"))
        connection.execute(text("ALTER TABLE tickets DROP COLUMN reminded_at"))

    before, after = upgrade(engine)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()

    assert (before, after) == ("0001", "0003")
    assert drift == []


@pytest.mark.postgres
def test_hosts_running_upgrade_at_once_take_turns(tmp_path: Path) -> None:
    # Trial 27: three `upgrade`s at once on a new PostgreSQL left two failing
    # on a duplicate alembic_version type (ExecStartPre of the service unit).
    with fresh_postgres_database() as database_url:
        said, codes, head = _upgrade_three_at_once(tmp_path, database_url)

    assert codes == [0, 0, 0]
    assert said == [
        f"database schema: {head} -> {head}\n",
        f"database schema: {head} -> {head}\n",
        f"database schema: empty -> {head}\n",
    ]


def _upgrade_three_at_once(
    tmp_path: Path, database_url: str
) -> tuple[list[str], list[int | None], str | None]:
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        database_url=database_url,
    )
    command = [str(Path(sys.executable).with_name("mailbot")), "--config", str(config)]
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    running = [
        subprocess.Popen(
            [*command, "upgrade"], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(3)
    ]
    said = sorted(process.communicate(timeout=60)[0] for process in running)
    engine = make_engine(database_url)
    head = head_revision(engine)
    engine.dispose()
    return said, [process.returncode for process in running], head


def test_opening_a_sqlite_database_keeps_sqlites_own_lock(tmp_path: Path) -> None:
    # Trial 29: a lock taken by opening and closing the database file dropped
    # every POSIX lock of the process on it, SQLite's among them; another
    # process then deleted the WAL from under `mailbot run`.
    path = tmp_path / "mailbot.sqlite3"
    sessions = open_database(f"sqlite:///{path}")
    with sessions() as session:
        session.execute(text("SELECT count(*) FROM tickets")).all()

    inode = path.stat().st_ino
    ours = [
        line.split()
        for line in Path("/proc/locks").read_text().splitlines()
        if f":{inode} " in line
    ]
    sessions.kw["bind"].dispose()
    assert [(fields[1], fields[3], fields[4]) for fields in ours] == [
        ("POSIX", "READ", str(os.getpid()))
    ]
