"""Pending rows: what the current transaction has added but not yet written.

Intake writes a batch of messages with one flush. Until then the database cannot
see the batch's own rows, so the lookups that must see them (the same message
twice, a reply to a complaint of the same batch, the auto-reply count) ask here
first. The functions that add such rows note them; a flush empties the notes,
because from then on the database answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from mailbot.models import Direction, InboundMail, Message, Ticket

_KEY = "mailbot.pending_rows"


@dataclass
class PendingRows:
    inbound: dict[str, InboundMail] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    # (Message-ID of a kept or queued message, its ticket), oldest first: a
    # reused Message-ID names every ticket it is on.
    messages: list[tuple[str, Ticket]] = field(default_factory=list)
    # (complainant address, letter kind) -> letters queued to them.
    letters: Counter[tuple[str, str]] = field(default_factory=Counter)


def pending_rows(session: Session) -> PendingRows:
    """The notes of this session's unwritten rows."""
    rows = session.info.get(_KEY)
    if rows is None:
        rows = session.info[_KEY] = PendingRows()
    return rows


def note_inbound(session: Session, inbound: InboundMail) -> None:
    pending_rows(session).inbound[inbound.dedupe_key] = inbound


def note_ticket(session: Session, ticket: Ticket) -> None:
    pending_rows(session).tickets[ticket.reference] = ticket


def note_message(session: Session, ticket: Ticket, message: Message) -> None:
    rows = pending_rows(session)
    # Newest last, as the table's ids grow: threading takes the newest.
    rows.messages.append((message.message_id, ticket))
    if message.direction == Direction.OUT:
        rows.letters[(ticket.complainant_email, message.kind)] += 1


@event.listens_for(Session, "after_flush")
def _written(session: Session, _context: Any) -> None:
    session.info.pop(_KEY, None)
