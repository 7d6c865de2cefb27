"""Commit log: a transaction's state changes are logged once it has committed.

A ticket created in a transaction that is rolled back never existed, so its
"created" line must not reach the log; intake retries a failed batch one message
at a time, and lines written before the rollback would show every ticket of the
batch twice, under references that were then handed out again. Code inside a
transaction says what changed with ``on_commit``; the lines are written right
after the commit, in the order they were noted, or dropped with a rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "mailbot.commit_log"

LogMethod = Callable[..., None]


def on_commit(
    session: Session, log_method: LogMethod, message: str, *args: Any
) -> None:
    """Log ``message % args`` with ``log_method`` (e.g. ``log.info``) on commit."""
    session.info.setdefault(_KEY, []).append((log_method, message, args))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for log_method, message, args in session.info.pop(_KEY, []):
        log_method(message, *args)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(_KEY, None)
