"""Commit log: state changes are logged when their transaction commits."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from mailbot.commitlog import on_commit
from mailbot.db import open_database

log = logging.getLogger("mailbot.tickets")


def test_lines_are_written_after_commit_in_order_and_dropped_on_rollback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailbot.tickets")
    sessions = open_database(f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")

    with sessions.begin() as session:
        on_commit(session, log.info, "ticket %s: created", "PRG-2026-000001-5")
        on_commit(session, log.warning, "ticket %s: withheld", "PRG-2026-000001-5")
        session.execute(text("SELECT 1"))
        assert caplog.records == []
    with pytest.raises(RuntimeError), sessions.begin() as session:
        on_commit(session, log.info, "ticket %s: created", "PRG-2026-000002-8")
        raise RuntimeError("the batch failed")
    with sessions.begin() as session:
        session.execute(text("SELECT 1"))

    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("mailbot.tickets", "INFO", "ticket PRG-2026-000001-5: created"),
        ("mailbot.tickets", "WARNING", "ticket PRG-2026-000001-5: withheld"),
    ]
