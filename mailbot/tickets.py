"""Tickets: opening them, adding their messages and recording every change.

Every state change is one INFO line with the reference, and one Event row that
``tickets show`` turns into the ticket's history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot.commitlog import on_commit
from mailbot.models import Direction, Event, Message, Ticket, TicketStatus
from mailbot.pending import note_message, note_ticket
from mailbot.policy import SlaConfig
from mailbot.references import Reference, allocate
from mailbot.sla import due_time

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "mailbot"


@dataclass(frozen=True)
class NewTicket:
    """What a ticket is opened with."""

    complainant_email: str
    complainant_name: str
    subject: str
    account: str
    inbox_address: str
    unit_code: str
    matched_keywords: tuple[str, ...]
    identity_provided: bool
    received_at: datetime


def open_ticket(
    session: Session,
    new: NewTicket,
    *,
    prefix: str,
    response_hours: int,
    timezone: str,
    sla: SlaConfig | None = None,
    write_now: bool = True,
) -> Ticket:
    """Create a ticket with the next reference of its year in the office's zone.

    With ``write_now`` the row is written at once and the ticket has its id;
    intake leaves it to the one write of all the rows a message makes.
    """
    year = new.received_at.astimezone(ZoneInfo(timezone)).year
    reference: Reference = allocate(session, prefix, year)
    ticket = Ticket(
        reference=str(reference),
        status=TicketStatus.RECEIVED,
        unit_code=new.unit_code,
        matched_keywords=list(new.matched_keywords),
        complainant_email=new.complainant_email,
        complainant_name=new.complainant_name,
        subject=new.subject,
        account=new.account,
        inbox_address=new.inbox_address,
        identity_provided=new.identity_provided,
        received_at=new.received_at,
        due_at=due_time(new.received_at, response_hours, sla or SlaConfig(), timezone),
        updated_at=new.received_at,
    )
    session.add(ticket)
    note_ticket(session, ticket)
    if write_now:
        session.flush()

    detail = f"unit {new.unit_code}"
    if new.matched_keywords:
        detail += f" (keywords: {', '.join(new.matched_keywords)})"
    record_event(session, ticket, "created", detail, at=new.received_at)
    on_commit(
        session,
        log.info,
        "ticket %s: created, routed to %s",
        ticket.reference,
        new.unit_code,
    )
    return ticket


def record_event(
    session: Session,
    ticket: Ticket,
    action: str,
    detail: str = "",
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
) -> Event:
    """Add one line to the ticket's history."""
    event = Event(ticket=ticket, at=at, actor=actor, action=action, detail=detail)
    session.add(event)
    ticket.updated_at = at
    return event


def change_status(
    session: Session,
    ticket: Ticket,
    status: TicketStatus,
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Move a ticket to another status, recorded and logged."""
    if ticket.status == status:
        return
    old = ticket.status
    ticket.status = status
    if status == TicketStatus.ANSWERED and ticket.answered_at is None:
        ticket.answered_at = at  # the first answer is the response time
    record_event(session, ticket, "status", f"{old} -> {status}", at=at, actor=actor)
    on_commit(
        session,
        log.info,
        "ticket %s: status %s -> %s by %s",
        ticket.reference,
        old,
        status,
        actor,
    )


@dataclass(frozen=True)
class MessageRecord:
    """One email of a ticket as its history keeps it."""

    direction: Direction
    kind: str
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    at: datetime
    inbound_id: int | None = None
    attachments: tuple[dict[str, object], ...] = ()


def add_message(session: Session, ticket: Ticket, record: MessageRecord) -> Message:
    """Keep an email, in or out, as a message of the ticket."""
    message = Message(
        ticket=ticket,
        direction=record.direction,
        kind=record.kind,
        message_id=record.message_id,
        sender=record.sender,
        recipients=list(record.recipients),
        subject=record.subject,
        text=record.text,
        at=record.at,
        inbound_id=record.inbound_id,
        attachments=[dict(item) for item in record.attachments],
    )
    session.add(message)
    note_message(session, ticket, message)
    return message
