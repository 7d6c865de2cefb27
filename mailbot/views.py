"""Views: tickets, quarantine and outbox as plain dicts for the CLI and JSON.

Reads only. Listings mask NIKs and phone numbers in subjects; the detail view of
one ticket shows its full history to the staff member who asked for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.identity import mask
from mailbot.models import (
    SET_ASIDE,
    InboundMail,
    InboundStatus,
    Message,
    OutboxItem,
    OutboxStatus,
    Ticket,
    TicketStatus,
)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _summary(ticket: Ticket, message_count: int) -> dict[str, Any]:
    return {
        "reference": ticket.reference,
        "status": str(ticket.status),
        "unit": ticket.unit_code,
        "complainant_email": ticket.complainant_email,
        "complainant_name": mask(ticket.complainant_name),
        "subject": mask(ticket.subject),
        "received_at": _iso(ticket.received_at),
        "due_at": _iso(ticket.due_at),
        "answered_at": _iso(ticket.answered_at),
        "matched_keywords": list(ticket.matched_keywords),
        "identity_provided": ticket.identity_provided,
        "message_count": message_count,
    }


def list_tickets(
    session: Session, *, status: TicketStatus | None = None, unit: str | None = None
) -> list[dict[str, Any]]:
    """Tickets, oldest first, with their message counts from one query."""
    counts = (
        select(Message.ticket_id, func.count().label("n"))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.ticket_id == Ticket.id)
        .order_by(Ticket.received_at, Ticket.id)
    )
    if status is not None:
        query = query.where(Ticket.status == status)
    if unit is not None:
        query = query.where(Ticket.unit_code == unit)
    return [_summary(ticket, count) for ticket, count in session.execute(query)]


def show_ticket(session: Session, reference: str) -> dict[str, Any] | None:
    """One ticket with every message and every event of its history."""
    ticket = session.scalar(select(Ticket).where(Ticket.reference == reference))
    if ticket is None:
        return None

    view = _summary(ticket, len(ticket.messages))
    view["subject"] = ticket.subject
    view["messages"] = [_message(m) for m in ticket.messages]
    view["history"] = [
        {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
        for e in ticket.events
    ]
    view["outbox"] = _outbox_of(session, ticket.id)
    return view


def _message(message: Message) -> dict[str, Any]:
    return {
        "direction": str(message.direction),
        "kind": message.kind,
        "message_id": message.message_id,
        "from": message.sender,
        "to": list(message.recipients),
        "subject": message.subject,
        "at": _iso(message.at),
        "text": message.text,
        "attachments": list(message.attachments),
    }


def _outbox_of(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    items = session.scalars(
        select(OutboxItem)
        .where(OutboxItem.ticket_id == ticket_id)
        .order_by(OutboxItem.id)
    )
    return [outbox_item(item, None) for item in items]


def outbox_item(item: OutboxItem, reference: str | None) -> dict[str, Any]:
    """One outgoing message and how its delivery went."""
    return {
        "id": item.id,
        "reference": reference,
        "kind": item.kind,
        "status": str(item.status),
        "attempts": item.attempts,
        "recipients": list(item.recipients),
        "message_id": item.message_id,
        "created_at": _iso(item.created_at),
        "next_attempt_at": _iso(item.next_attempt_at),
        "sent_at": _iso(item.sent_at),
        "last_reply": item.last_reply,
    }


def list_outbox(session: Session, status: OutboxStatus | None) -> list[dict[str, Any]]:
    """The outbox with each row's ticket reference."""
    query = (
        select(OutboxItem, Ticket.reference)
        .outerjoin(Ticket, Ticket.id == OutboxItem.ticket_id)
        .order_by(OutboxItem.id)
    )
    if status is not None:
        query = query.where(OutboxItem.status == status)
    return [outbox_item(item, reference) for item, reference in session.execute(query)]


def list_quarantine(session: Session) -> list[dict[str, Any]]:
    """Messages set aside (quarantined, or staff mail taken as forged), with
    when, from where, why and where the bytes are."""
    rows = session.scalars(
        select(InboundMail)
        .where(InboundMail.status.in_(SET_ASIDE))
        .order_by(InboundMail.id)
    )
    return [
        {
            "id": row.id,
            "status": str(row.status),
            "received_at": _iso(row.received_at),
            "account": row.source.split(":", 1)[0],
            "source": row.source,
            "reason": row.reason,
            "raw_path": row.raw_path,
        }
        for row in rows
    ]


def forged_attempts(session: Session, since: datetime) -> int:
    """How many messages claimed a staff address without proof since then."""
    count = session.scalar(
        select(func.count())
        .select_from(InboundMail)
        .where(InboundMail.status == InboundStatus.FORGED)
        .where(InboundMail.received_at >= since)
    )
    return int(count or 0)
